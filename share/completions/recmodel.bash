# Bash completion for recmodel.
#
# Use it with:   source /path/to/recmodel/share/completions/recmodel.bash   (in ~/.bashrc)
# or install it: cp recmodel.bash ~/.local/share/bash-completion/completions/recmodel
#
# The lists below mirror 'recmodel CMD --help'; tests/cli/docs_test.cpp fails when an option
# or command is added to the binary without being added here.

# Options valid with every command (and before it).
_recmodel_global_opts="--json -q --quiet -v --verbose --registry --threads --no-progress -h --help"
_recmodel_commands="preprocess init pretrain train evaluate predict tokenize vocab quantize export registry remote push pull sync ls serve pipeline drift report help"

# Prints the options of one command, global options excluded.
_recmodel_command_opts() {
    case "$1" in
        preprocess)
            echo "--input --train --dev --test --format --text-column --text-pair-column \
--label-column --task --labels --vocab --model --cased --max-length --split --seed \
--group-column --out --force --max-rejected --duplicates --conflicts --drop-test-overlap" ;;
        evaluate)
            echo "--model --data --split --batch-size --device --predictions --labels --id-column \
--top-k --fail-under --max --report --record" ;;
        predict)
            echo "--model --device --batch-size --max-length --input --format --pair --text-column \
--text-pair-column --id-column --strict --top-k --probs --logits" ;;
        tokenize)
            echo "--vocab --model --cased --input --pair --jsonl --no-special --max-length \
--ids-only --write-tokenizer" ;;
        vocab)
            echo "--input --lowercase --size --min-frequency --limit-alphabet --unused --out --force" ;;
        init)
            echo "--preset --from --seed --vocab --cased --labels --task --data --out --force" ;;
        pretrain)
            echo "--corpus --model --preset --vocab --cased --out --force --mlm-probability --whole-word-masking \
--no-whole-word-masking --max-length --eval-fraction --epochs --max-steps --batch-size --lr --warmup-ratio \
--weight-decay --seed --eval-every --checkpoint-every --resume --stop-after --work-dir --device --precision" ;;
        train)
            echo "--model --data --out --force --reset-head --register --epochs --batch-size --lr \
--warmup-ratio --weight-decay --grad-accum --max-grad-norm --seed --eval-every --metric --patience \
--checkpoint-every --log-every --resume --stop-after --work-dir --keep-checkpoints --nproc-per-node --dist-timeout --device --precision \
--autotune --autotune-trials" ;;
        registry)
            echo "--lock-timeout" ;;
        quantize)
            echo "--model --per-tensor --data --split --max-drop --batch-size --out --force" ;;
        export)
            echo "--model --opset --quantize --per-tensor --external-data --verify --atol --int8-atol \
--verify-inputs --out --force" ;;
        push)
            echo "--to --name --version --private $_recmodel_transfer_opts" ;;
        pull)
            echo "--from --out --force $_recmodel_transfer_opts" ;;
        sync)
            echo "--from --to $_recmodel_transfer_opts" ;;
        ls)
            echo "--jobs --config --key-file" ;;
        pipeline)
            echo "--config --set --force --dry-run" ;;
        drift)
            echo "--model --input --format --text-column --text-pair-column --window --since --served-name \
--all-versions --reference --reference-split --fail-over --batch-size --device" ;;
        report)
            echo "--out --data --split --batch-size --device --predictions --labels --id-column --drift" ;;
        serve)
            echo "--model --from --poll --device --max-length --host --port --max-concurrent-requests \
--payload-limit --request-timeout --idle-timeout --drain-timeout --http-threads --max-batch-tokens \
--max-batch-requests --max-queue-delay-ms --tokenizer-threads --log-predictions --log-sample" ;;
    esac
}

# Storage: the transfer options of push, pull and sync, and 'recmodel remote add|list|remove'.
_recmodel_transfer_opts="--config --jobs --part-size --multipart-threshold --retries --timeout --key-file"
_recmodel_remote_opts() {
    case "$1" in
        add)
            echo "--config --endpoint --region --profile --path-style --ca-bundle --public --private --create-bucket \
--force --encrypt --key-file" ;;
        rotate-key)
            echo "--config --new-key-file --key-file" ;;
        *)
            echo "--config" ;;
    esac
}

# Completes the remote names of the config file ($RECMODEL_CONFIG or the XDG default).
_recmodel_remote_names() {
    local config="${RECMODEL_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/recmodel/config.toml}" names
    names=$(sed -n 's/^\[remotes\.\([^]]*\)\].*/\1/p' "$config" 2>/dev/null)
    COMPREPLY=($(compgen -W "$names" -- "$1"))
}

# Completes 'recmodel remote ...'; $1 is the index of the word "remote", $2 and $3 the word
# being completed and the one before it.
_recmodel_remote() {
    local start=$1 cur=$2 prev=$3 sub="" j word
    for ((j = start + 1; j < COMP_CWORD; j++)); do
        word="${COMP_WORDS[j]}"
        if [[ "$word" == "--registry" || "$word" == "--threads" || "$word" == "--endpoint" || \
              "$word" == "--region" || "$word" == "--profile" || "$word" == "--ca-bundle" || \
              "$word" == "--config" || "$word" == "--key-file" || "$word" == "--new-key-file" ]]; then
            [[ "${COMP_WORDS[j + 1]}" == "=" ]] && ((j++))
            ((j++))
        elif [[ "$word" != -* && "$word" != "=" ]]; then
            sub="$word"
            break
        fi
    done
    case "$prev" in
        --ca-bundle|--registry|--config|--key-file|--new-key-file) _recmodel_files "$cur"; return 0 ;;
        --endpoint|--region|--profile|--threads) return 0 ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_recmodel_remote_opts "$sub") $_recmodel_global_opts" -- "$cur"))
    elif [[ -z "$sub" ]]; then
        COMPREPLY=($(compgen -W "add list remove keygen rotate-key" -- "$cur"))
    elif [[ "$sub" == "keygen" ]]; then
        _recmodel_files "$cur"
    elif [[ "$sub" == "remove" || "$sub" == "rotate-key" ]]; then
        _recmodel_remote_names "$cur"
    fi
}

# The subcommands of 'recmodel registry' and the options of each.
_recmodel_registry_subcommands="register list show promote unalias tag compare lineage history rollback \
verify archive delete migrate"
_recmodel_registry_opts() {
    case "$1" in
        register)
            echo "--path --tag --description --parent --dataset --base-checkpoint --metric --param --manifest" ;;
        list) echo "--tag --alias --status --limit" ;;
        promote) echo "--alias --reason --expect" ;;
        unalias|rollback) echo "--reason" ;;
        tag) echo "--remove --description" ;;
        history) echo "--at" ;;
        archive) echo "--restore --force" ;;
        delete) echo "--force" ;;
        migrate) echo "--to" ;;
    esac
}

# Completes 'recmodel registry ...'; $1 is the index of the word "registry", $2 and $3 the
# word being completed and the one before it.
_recmodel_registry() {
    local start=$1 cur=$2 prev=$3 sub="" j word
    for ((j = start + 1; j < COMP_CWORD; j++)); do
        word="${COMP_WORDS[j]}"
        if [[ "$word" == "--lock-timeout" || "$word" == "--registry" || "$word" == "--threads" ]]; then
            [[ "${COMP_WORDS[j + 1]}" == "=" ]] && ((j++))
            ((j++))
        elif [[ "$word" != -* && "$word" != "=" ]]; then
            sub="$word"
            break
        fi
    done
    case "$prev" in
        --path|--dataset) _recmodel_dirs "$cur"; return 0 ;;
        --manifest|--registry|--to) _recmodel_files "$cur"; return 0 ;;
        --status) COMPREPLY=($(compgen -W "active archived all" -- "$cur")); return 0 ;;
        --lock-timeout|--threads|--tag|--description|--parent|--base-checkpoint|--metric|--param|--alias|\
--limit|--reason|--expect|--remove|--at)
            return 0 ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_recmodel_registry_opts "$sub") --lock-timeout $_recmodel_global_opts" -- "$cur"))
    elif [[ -z "$sub" ]]; then
        COMPREPLY=($(compgen -W "$_recmodel_registry_subcommands" -- "$cur"))
    fi
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

    if [[ "$command" == "registry" ]]; then
        _recmodel_registry "$i" "$cur" "$prev"
        return 0
    fi
    if [[ "$command" == "remote" ]]; then
        _recmodel_remote "$i" "$cur" "$prev"
        return 0
    fi

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
                --duplicates) COMPREPLY=($(compgen -W "drop keep" -- "$cur")); return 0 ;;
                --conflicts) COMPREPLY=($(compgen -W "reject keep majority" -- "$cur")); return 0 ;;
                --text-column|--text-pair-column|--label-column|--labels|--max-length|--seed|\
--group-column|--max-rejected)
                    return 0 ;;
            esac ;;
        evaluate)
            case "$prev" in
                --predictions|--labels|--report) _recmodel_files "$cur"; return 0 ;;
                --model|--data) _recmodel_dirs "$cur"; return 0 ;;
                --split) COMPREPLY=($(compgen -W "test dev train" -- "$cur")); return 0 ;;
                --device) COMPREPLY=($(compgen -W "auto cpu cuda" -- "$cur")); return 0 ;;
                --fail-under|--max)
                    COMPREPLY=($(compgen -W "accuracy= precision_macro= recall_macro= f1_macro= f1_micro= \
f1_weighted= precision_micro= recall_micro= precision_weighted= recall_weighted= top_k_accuracy= roc_auc= \
pr_auc= mae= rmse= r2=" -- "$cur"))
                    compopt -o nospace 2>/dev/null
                    return 0 ;;
                --batch-size|--id-column|--top-k) return 0 ;;
            esac ;;
        predict)
            case "$prev" in
                --input) _recmodel_files "$cur"; return 0 ;;
                --model) _recmodel_dirs "$cur"; return 0 ;;
                --format) COMPREPLY=($(compgen -W "auto lines csv tsv jsonl" -- "$cur")); return 0 ;;
                --device) COMPREPLY=($(compgen -W "auto cpu cuda" -- "$cur")); return 0 ;;
                --batch-size|--max-length|--text-column|--text-pair-column|--id-column|--top-k) return 0 ;;
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
        init)
            case "$prev" in
                --vocab) _recmodel_files "$cur"; return 0 ;;
                --data|--out|--from) _recmodel_dirs "$cur"; return 0 ;;
                --preset) COMPREPLY=($(compgen -W "tiny mini small base" -- "$cur")); return 0 ;;
                --task) COMPREPLY=($(compgen -W "classification regression" -- "$cur")); return 0 ;;
                --labels|--seed) return 0 ;;
            esac ;;
        pretrain)
            case "$prev" in
                --corpus|--vocab) _recmodel_files "$cur"; return 0 ;;
                --model|--out|--work-dir) _recmodel_dirs "$cur"; return 0 ;;
                --preset) COMPREPLY=($(compgen -W "tiny mini small base" -- "$cur")); return 0 ;;
                --precision) COMPREPLY=($(compgen -W "fp32 bf16 fp16" -- "$cur")); return 0 ;;
                --device) COMPREPLY=($(compgen -W "auto cpu cuda" -- "$cur")); return 0 ;;
                --mlm-probability|--max-length|--eval-fraction|--epochs|--max-steps|--batch-size|--lr|--warmup-ratio|\
--weight-decay|--seed|--eval-every|--checkpoint-every|--stop-after) return 0 ;;
            esac ;;
        train)
            case "$prev" in
                --model|--data|--out|--work-dir) _recmodel_dirs "$cur"; return 0 ;;
                --metric)
                    COMPREPLY=($(compgen -W "accuracy precision_macro recall_macro f1_macro f1_micro f1_weighted \
precision_micro recall_micro precision_weighted recall_weighted top_k_accuracy roc_auc pr_auc mae rmse r2" \
                        -- "$cur"))
                    return 0 ;;
                --precision) COMPREPLY=($(compgen -W "fp32 bf16 fp16" -- "$cur")); return 0 ;;
                --device) COMPREPLY=($(compgen -W "auto cpu cuda" -- "$cur")); return 0 ;;
                --register|--epochs|--batch-size|--lr|--warmup-ratio|--weight-decay|--grad-accum|\
--max-grad-norm|--seed|--eval-every|--patience|--checkpoint-every|--log-every|--stop-after|--autotune|--autotune-trials)
                    return 0 ;;
            esac ;;
        quantize)
            case "$prev" in
                --model|--data|--out) _recmodel_dirs "$cur"; return 0 ;;
                --split) COMPREPLY=($(compgen -W "train dev test" -- "$cur")); return 0 ;;
                --max-drop) COMPREPLY=($(compgen -W "accuracy=0.01 f1_macro=0.01" -- "$cur")); return 0 ;;
                --batch-size) return 0 ;;
            esac ;;
        export)
            case "$prev" in
                --model|--out) _recmodel_dirs "$cur"; return 0 ;;
                --quantize) COMPREPLY=($(compgen -W "none int8" -- "$cur")); return 0 ;;
                --opset) COMPREPLY=($(compgen -W "14 15 16 17" -- "$cur")); return 0 ;;
                --atol|--int8-atol|--verify-inputs) return 0 ;;
            esac ;;
        push|pull|sync|ls)
            case "$prev" in
                --to|--from) _recmodel_remote_names "$cur"; return 0 ;;
                --out) _recmodel_dirs "$cur"; return 0 ;;
                --config|--key-file) _recmodel_files "$cur"; return 0 ;;
                --name|--version|--jobs|--retries|--timeout) return 0 ;;
                --part-size|--multipart-threshold) COMPREPLY=($(compgen -W "64KiB 8MiB 16MiB 64MiB" -- "$cur")); return 0 ;;
            esac
            # The first operand of ls is a remote; that of push a model directory.
            if [[ "$cur" != -* && "$command" == "ls" && "$prev" == "ls" ]]; then
                _recmodel_remote_names "$cur"; return 0
            elif [[ "$cur" != -* && "$command" == "push" && "$prev" == "push" ]]; then
                _recmodel_dirs "$cur"; return 0
            fi ;;
        serve)
            case "$prev" in
                --model) _recmodel_dirs "$cur"; return 0 ;;
                --from) _recmodel_remote_names "$cur"; return 0 ;;
                --log-predictions) _recmodel_files "$cur"; return 0 ;;
                --device) COMPREPLY=($(compgen -W "auto cpu cuda" -- "$cur")); return 0 ;;
                --host) COMPREPLY=($(compgen -W "127.0.0.1 0.0.0.0 localhost" -- "$cur")); return 0 ;;
                --port) COMPREPLY=($(compgen -W "8080 0" -- "$cur")); return 0 ;;
                --poll|--max-length|--max-concurrent-requests|--payload-limit|--request-timeout|--idle-timeout|\
--drain-timeout|--http-threads|--max-batch-tokens|--max-batch-requests|--max-queue-delay-ms|--tokenizer-threads|\
--log-sample)
                    return 0 ;;
            esac ;;
        pipeline)
            case "$prev" in
                --config) _recmodel_files "$cur"; return 0 ;;
                --force) COMPREPLY=($(compgen -W "preprocess train evaluate quantize export register promote publish" \
                    -- "$cur")); return 0 ;;
                --set)
                    COMPREPLY=($(compgen -W "data. model. train. gates. quantize. export. register. promotion. publish." \
                        -- "$cur"))
                    compopt -o nospace 2>/dev/null
                    return 0 ;;
            esac
            if [[ "$cur" != -* && "$prev" == "pipeline" ]]; then
                COMPREPLY=($(compgen -W "run status" -- "$cur")); return 0
            elif [[ "$cur" != -* && ( "$prev" == "run" || "$prev" == "status" ) ]]; then
                _recmodel_files "$cur"; return 0
            fi ;;
        drift)
            case "$prev" in
                --model|--input) _recmodel_files "$cur"; return 0 ;;
                --reference) _recmodel_dirs "$cur"; return 0 ;;
                --format) COMPREPLY=($(compgen -W "auto log predictions lines pairs csv tsv jsonl" -- "$cur")); return 0 ;;
                --reference-split) COMPREPLY=($(compgen -W "train dev test" -- "$cur")); return 0 ;;
                --device) COMPREPLY=($(compgen -W "auto cpu cuda" -- "$cur")); return 0 ;;
                --fail-over) COMPREPLY=($(compgen -W "psi=0.2,js=0.1" -- "$cur")); return 0 ;;
                --since) COMPREPLY=($(compgen -W "1h 6h 24h 7d" -- "$cur")); return 0 ;;
                --text-column|--text-pair-column|--window|--served-name|--batch-size) return 0 ;;
            esac ;;
        report)
            case "$prev" in
                --out|--predictions|--labels|--drift) _recmodel_files "$cur"; return 0 ;;
                --data) _recmodel_dirs "$cur"; return 0 ;;
                --split) COMPREPLY=($(compgen -W "train dev test" -- "$cur")); return 0 ;;
                --device) COMPREPLY=($(compgen -W "auto cpu cuda" -- "$cur")); return 0 ;;
                --batch-size|--id-column) return 0 ;;
            esac
            # The operand is the model: a directory (or a models:/ reference typed out).
            if [[ "$cur" != -* ]]; then
                _recmodel_dirs "$cur"; return 0
            fi ;;
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
