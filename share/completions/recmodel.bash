# Bash completion for recmodel.
#
# Use it with:   source /path/to/recmodel/share/completions/recmodel.bash   (in ~/.bashrc)
# or install it: cp recmodel.bash ~/.local/share/bash-completion/completions/recmodel
#
# The lists below mirror 'recmodel CMD --help'; tests/cli/docs_test.cpp fails when an option
# or command is added to the binary without being added here.

# Options valid with every command (and before it).
_recmodel_global_opts="--json -q --quiet -v --verbose --registry --threads --no-progress -h --help"
_recmodel_commands="preprocess tokenize vocab help"

# Prints the options of one command, global options excluded.
_recmodel_command_opts() {
    case "$1" in
        preprocess)
            echo "--input --train --dev --test --format --text-column --text-pair-column \
--label-column --task --labels --vocab --model --cased --max-length --split --seed \
--group-column --out --force --max-rejected" ;;
        tokenize)
            echo "--vocab --model --cased --input --pair --jsonl --no-special --max-length \
--ids-only --write-tokenizer" ;;
        vocab)
            echo "--input --lowercase --size --min-frequency --limit-alphabet --unused --out --force" ;;
    esac
}

# Completes file (and directory) names; one per line, so names with spaces survive.
_recmodel_files() {
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$1")
}

# Completes directory names.
_recmodel_dirs() {
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -d -- "$1")
}

# Completes the recmodel command line in COMP_WORDS (bash's complete -F).
_recmodel() {
    local cur prev command="" i word
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev=""
    ((COMP_CWORD > 0)) && prev="${COMP_WORDS[COMP_CWORD - 1]}"
    # "--task=re" arrives as "--task" "=" "re" (= is in COMP_WORDBREAKS).
    if [[ "$cur" == "=" ]]; then
        prev="${COMP_WORDS[COMP_CWORD - 1]}"
        cur=""
    elif [[ "$prev" == "=" ]] && ((COMP_CWORD > 1)); then
        prev="${COMP_WORDS[COMP_CWORD - 2]}"
    fi

    # The command is the first word that is neither an option nor an option's value.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        if [[ "$word" == "--registry" || "$word" == "--threads" ]]; then
            # Skip the value, given as "--threads 2" or "--threads=2" ("--threads" "=" "2").
            [[ "${COMP_WORDS[i + 1]}" == "=" ]] && ((i++))
            ((i++))
        elif [[ "$word" != -* && "$word" != "=" ]]; then
            command="$word"
            break
        fi
    done

    # Values of the option before the cursor.
    case "$prev" in
        --registry)
            _recmodel_files "$cur"; return 0 ;;
        --threads)
            return 0 ;;
    esac
    case "$command" in
        preprocess)
            case "$prev" in
                --input|--train|--dev|--test|--vocab) _recmodel_files "$cur"; return 0 ;;
                --model|--out) _recmodel_dirs "$cur"; return 0 ;;
                --format) COMPREPLY=($(compgen -W "auto csv tsv jsonl" -- "$cur")); return 0 ;;
                --task) COMPREPLY=($(compgen -W "classification regression" -- "$cur")); return 0 ;;
                --split) COMPREPLY=($(compgen -W "0.8,0.1,0.1 0.9,0.1" -- "$cur")); return 0 ;;
                --text-column|--text-pair-column|--label-column|--labels|--max-length|--seed|\
--group-column|--max-rejected)
                    return 0 ;;
            esac ;;
        tokenize)
            case "$prev" in
                --input|--vocab) _recmodel_files "$cur"; return 0 ;;
                --model|--write-tokenizer) _recmodel_dirs "$cur"; return 0 ;;
                --max-length) return 0 ;;
            esac ;;
        vocab)
            case "$prev" in
                --input|--out) _recmodel_files "$cur"; return 0 ;;
                --size|--min-frequency|--limit-alphabet|--unused) return 0 ;;
            esac ;;
    esac

    if [[ -z "$command" ]]; then
        if [[ "$cur" == -* ]]; then
            COMPREPLY=($(compgen -W "$_recmodel_global_opts -V --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$_recmodel_commands" -- "$cur"))
        fi
    elif [[ "$command" == "help" ]]; then
        COMPREPLY=($(compgen -W "$_recmodel_commands" -- "$cur"))
    elif [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_recmodel_command_opts "$command") $_recmodel_global_opts" -- "$cur"))
    fi
    return 0
}

complete -F _recmodel recmodel
