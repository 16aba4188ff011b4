// recmodel's entry point: everything lives in the libraries; errors become exit codes in run_cli.
// Model commands are handed to recmodel-torch (cli/torch_main.cpp), so this binary never loads libtorch.
#include "cli/app.h"

int main(int argc, char** argv) { return recmodel::run_cli(argc, argv); }
