// recmodel's entry point: everything lives in the library; errors become exit codes in run_cli.
#include "cli/app.h"

int main(int argc, char** argv) { return recmodel::run_cli(argc, argv); }
