# bash completion for mcpadmin (generated; do not edit)
_mcpadmin_words() {
    # $1 = command path, $2 = kind (sub|opt|val), $3 = option
    local words=''
    case "$2" in
    sub) case "$1" in
        '') words='audit bridge completion cors keys serve stack' ;;
        'audit') words='alarms cors events failures watch' ;;
        'audit alarms') words='' ;;
        'audit cors') words='' ;;
        'audit events') words='' ;;
        'audit failures') words='' ;;
        'audit watch') words='' ;;
        'bridge') words='config run' ;;
        'bridge config') words='' ;;
        'bridge run') words='' ;;
        'completion') words='' ;;
        'cors') words='add check list remove' ;;
        'cors add') words='' ;;
        'cors check') words='' ;;
        'cors list') words='' ;;
        'cors remove') words='' ;;
        'keys') words='create hash import list revoke rotate show update verify' ;;
        'keys create') words='' ;;
        'keys hash') words='' ;;
        'keys import') words='' ;;
        'keys list') words='' ;;
        'keys revoke') words='' ;;
        'keys rotate') words='' ;;
        'keys show') words='' ;;
        'keys update') words='' ;;
        'keys verify') words='' ;;
        'serve') words='' ;;
        'stack') words='deploy outputs status template tunnel validate' ;;
        'stack deploy') words='' ;;
        'stack outputs') words='' ;;
        'stack status') words='' ;;
        'stack template') words='' ;;
        'stack tunnel') words='' ;;
        'stack validate') words='' ;;
        esac ;;
    opt) case "$1" in
        '') words='--debug --version --help' ;;
        'audit') words='--help' ;;
        'audit alarms') words='--stack --region --profile --endpoint-url --output -o --help' ;;
        'audit cors') words='--since --until --source --log-file --log-group --by --fail-above --region --profile --endpoint-url --page-size --output -o --quiet -q --help' ;;
        'audit events') words='--since --store --namespace --redis-server-name --output -o --help' ;;
        'audit failures') words='--since --until --source --log-file --log-group --by --event --fail-above --region --profile --endpoint-url --page-size --output -o --quiet -q --help' ;;
        'audit watch') words='--since --source --log-file --log-group --event --poll --region --profile --endpoint-url --help' ;;
        'bridge') words='--help' ;;
        'bridge config') words='--url --name --key-from-stdin --no-key-from-stdin --ca-bundle --help' ;;
        'bridge run') words='--allow-http --no-allow-http --version --help' ;;
        'completion') words='--help' ;;
        'cors') words='--help' ;;
        'cors add') words='--store --namespace --redis-server-name --quiet -q --help' ;;
        'cors check') words='--store --namespace --redis-server-name --quiet -q --help' ;;
        'cors list') words='--store --namespace --redis-server-name --output -o --quiet -q --help' ;;
        'cors remove') words='--store --namespace --redis-server-name --quiet -q --help' ;;
        'keys') words='--help' ;;
        'keys create') words='--scope -s --expires --owner --description --rate --max-sessions --store --namespace --redis-server-name --output -o --quiet -q --help' ;;
        'keys hash') words='--check --help' ;;
        'keys import') words='--format --name-prefix --scope -s --owner --store --namespace --redis-server-name --output -o --quiet -q --help' ;;
        'keys list') words='--all -a --owner --status --expiring-within --unused-for --store --namespace --redis-server-name --output -o --quiet -q --help' ;;
        'keys revoke') words='--reason --all --owner --yes -y --store --namespace --redis-server-name --output -o --quiet -q --help' ;;
        'keys rotate') words='--grace --store --namespace --redis-server-name --output -o --quiet -q --help' ;;
        'keys show') words='--store --namespace --redis-server-name --output -o --help' ;;
        'keys update') words='--rate --max-sessions --store --namespace --redis-server-name --output -o --help' ;;
        'keys verify') words='--store --namespace --redis-server-name --output -o --quiet -q --help' ;;
        'serve') words='--host --port --tls-cert --tls-key --redirect-port --trusted-proxy --behind-proxy --no-behind-proxy --production --no-production --cors-origin --log-file --log-stdout --no-log-stdout --app --mcp-path --policy --tool-scope --default-scope --hashes-file --no-store --no-no-store --poll-interval --stale-grace --max-failures --failure-window --resource-url --max-sessions-per-key --rate-per-key --session-idle-timeout --header-timeout --handshake-timeout --max-connections --max-verifying --max-verifying-per-ip --store --namespace --redis-server-name --help' ;;
        'stack') words='--help' ;;
        'stack deploy') words='--template -t --param -p --yes -y --no-execute --region --profile --endpoint-url --output -o --quiet -q --help' ;;
        'stack outputs') words='--region --profile --endpoint-url --output -o --quiet -q --help' ;;
        'stack status') words='--region --profile --endpoint-url --output -o --help' ;;
        'stack template') words='--help' ;;
        'stack tunnel') words='--local-port --region --profile --endpoint-url --help' ;;
        'stack validate') words='--template -t --region --output -o --quiet -q --help' ;;
        esac ;;
    val) case "$1|$3" in
        'audit alarms|--stack') words='' ;;
        'audit alarms|--region') words='' ;;
        'audit alarms|--profile') words='' ;;
        'audit alarms|--endpoint-url') words='' ;;
        'audit alarms|--output') words='table json csv' ;;
        'audit alarms|-o') words='table json csv' ;;
        'audit cors|--since') words='' ;;
        'audit cors|--until') words='' ;;
        'audit cors|--source') words='local cloudwatch' ;;
        'audit cors|--log-file') words='' ;;
        'audit cors|--log-group') words='' ;;
        'audit cors|--by') words='ip reason key path none' ;;
        'audit cors|--fail-above') words='' ;;
        'audit cors|--region') words='' ;;
        'audit cors|--profile') words='' ;;
        'audit cors|--endpoint-url') words='' ;;
        'audit cors|--page-size') words='' ;;
        'audit cors|--output') words='table json csv' ;;
        'audit cors|-o') words='table json csv' ;;
        'audit events|--since') words='' ;;
        'audit events|--store') words='' ;;
        'audit events|--namespace') words='' ;;
        'audit events|--redis-server-name') words='' ;;
        'audit events|--output') words='table json csv' ;;
        'audit events|-o') words='table json csv' ;;
        'audit failures|--since') words='' ;;
        'audit failures|--until') words='' ;;
        'audit failures|--source') words='local cloudwatch' ;;
        'audit failures|--log-file') words='' ;;
        'audit failures|--log-group') words='' ;;
        'audit failures|--by') words='ip reason key path none' ;;
        'audit failures|--event') words='' ;;
        'audit failures|--fail-above') words='' ;;
        'audit failures|--region') words='' ;;
        'audit failures|--profile') words='' ;;
        'audit failures|--endpoint-url') words='' ;;
        'audit failures|--page-size') words='' ;;
        'audit failures|--output') words='table json csv' ;;
        'audit failures|-o') words='table json csv' ;;
        'audit watch|--since') words='' ;;
        'audit watch|--source') words='local cloudwatch' ;;
        'audit watch|--log-file') words='' ;;
        'audit watch|--log-group') words='' ;;
        'audit watch|--event') words='' ;;
        'audit watch|--poll') words='' ;;
        'audit watch|--region') words='' ;;
        'audit watch|--profile') words='' ;;
        'audit watch|--endpoint-url') words='' ;;
        'bridge config|--url') words='' ;;
        'bridge config|--name') words='' ;;
        'bridge config|--ca-bundle') words='' ;;
        'cors add|--store') words='' ;;
        'cors add|--namespace') words='' ;;
        'cors add|--redis-server-name') words='' ;;
        'cors check|--store') words='' ;;
        'cors check|--namespace') words='' ;;
        'cors check|--redis-server-name') words='' ;;
        'cors list|--store') words='' ;;
        'cors list|--namespace') words='' ;;
        'cors list|--redis-server-name') words='' ;;
        'cors list|--output') words='table json csv' ;;
        'cors list|-o') words='table json csv' ;;
        'cors remove|--store') words='' ;;
        'cors remove|--namespace') words='' ;;
        'cors remove|--redis-server-name') words='' ;;
        'keys create|--scope') words='' ;;
        'keys create|-s') words='' ;;
        'keys create|--expires') words='' ;;
        'keys create|--owner') words='' ;;
        'keys create|--description') words='' ;;
        'keys create|--rate') words='' ;;
        'keys create|--max-sessions') words='' ;;
        'keys create|--store') words='' ;;
        'keys create|--namespace') words='' ;;
        'keys create|--redis-server-name') words='' ;;
        'keys create|--output') words='table json csv' ;;
        'keys create|-o') words='table json csv' ;;
        'keys hash|--check') words='' ;;
        'keys import|--format') words='auto lines api-keys' ;;
        'keys import|--name-prefix') words='' ;;
        'keys import|--scope') words='' ;;
        'keys import|-s') words='' ;;
        'keys import|--owner') words='' ;;
        'keys import|--store') words='' ;;
        'keys import|--namespace') words='' ;;
        'keys import|--redis-server-name') words='' ;;
        'keys import|--output') words='table json csv' ;;
        'keys import|-o') words='table json csv' ;;
        'keys list|--owner') words='' ;;
        'keys list|--status') words='' ;;
        'keys list|--expiring-within') words='' ;;
        'keys list|--unused-for') words='' ;;
        'keys list|--store') words='' ;;
        'keys list|--namespace') words='' ;;
        'keys list|--redis-server-name') words='' ;;
        'keys list|--output') words='table json csv' ;;
        'keys list|-o') words='table json csv' ;;
        'keys revoke|--reason') words='' ;;
        'keys revoke|--owner') words='' ;;
        'keys revoke|--store') words='' ;;
        'keys revoke|--namespace') words='' ;;
        'keys revoke|--redis-server-name') words='' ;;
        'keys revoke|--output') words='table json csv' ;;
        'keys revoke|-o') words='table json csv' ;;
        'keys rotate|--grace') words='' ;;
        'keys rotate|--store') words='' ;;
        'keys rotate|--namespace') words='' ;;
        'keys rotate|--redis-server-name') words='' ;;
        'keys rotate|--output') words='table json csv' ;;
        'keys rotate|-o') words='table json csv' ;;
        'keys show|--store') words='' ;;
        'keys show|--namespace') words='' ;;
        'keys show|--redis-server-name') words='' ;;
        'keys show|--output') words='table json csv' ;;
        'keys show|-o') words='table json csv' ;;
        'keys update|--rate') words='' ;;
        'keys update|--max-sessions') words='' ;;
        'keys update|--store') words='' ;;
        'keys update|--namespace') words='' ;;
        'keys update|--redis-server-name') words='' ;;
        'keys update|--output') words='table json csv' ;;
        'keys update|-o') words='table json csv' ;;
        'keys verify|--store') words='' ;;
        'keys verify|--namespace') words='' ;;
        'keys verify|--redis-server-name') words='' ;;
        'keys verify|--output') words='table json csv' ;;
        'keys verify|-o') words='table json csv' ;;
        'serve|--host') words='' ;;
        'serve|--port') words='' ;;
        'serve|--tls-cert') words='' ;;
        'serve|--tls-key') words='' ;;
        'serve|--redirect-port') words='' ;;
        'serve|--trusted-proxy') words='' ;;
        'serve|--cors-origin') words='' ;;
        'serve|--log-file') words='' ;;
        'serve|--app') words='' ;;
        'serve|--mcp-path') words='' ;;
        'serve|--policy') words='' ;;
        'serve|--tool-scope') words='' ;;
        'serve|--default-scope') words='' ;;
        'serve|--hashes-file') words='' ;;
        'serve|--poll-interval') words='' ;;
        'serve|--stale-grace') words='' ;;
        'serve|--max-failures') words='' ;;
        'serve|--failure-window') words='' ;;
        'serve|--resource-url') words='' ;;
        'serve|--max-sessions-per-key') words='' ;;
        'serve|--rate-per-key') words='' ;;
        'serve|--session-idle-timeout') words='' ;;
        'serve|--header-timeout') words='' ;;
        'serve|--handshake-timeout') words='' ;;
        'serve|--max-connections') words='' ;;
        'serve|--max-verifying') words='' ;;
        'serve|--max-verifying-per-ip') words='' ;;
        'serve|--store') words='' ;;
        'serve|--namespace') words='' ;;
        'serve|--redis-server-name') words='' ;;
        'stack deploy|--template') words='' ;;
        'stack deploy|-t') words='' ;;
        'stack deploy|--param') words='' ;;
        'stack deploy|-p') words='' ;;
        'stack deploy|--region') words='' ;;
        'stack deploy|--profile') words='' ;;
        'stack deploy|--endpoint-url') words='' ;;
        'stack deploy|--output') words='table json csv' ;;
        'stack deploy|-o') words='table json csv' ;;
        'stack outputs|--region') words='' ;;
        'stack outputs|--profile') words='' ;;
        'stack outputs|--endpoint-url') words='' ;;
        'stack outputs|--output') words='table json csv' ;;
        'stack outputs|-o') words='table json csv' ;;
        'stack status|--region') words='' ;;
        'stack status|--profile') words='' ;;
        'stack status|--endpoint-url') words='' ;;
        'stack status|--output') words='table json csv' ;;
        'stack status|-o') words='table json csv' ;;
        'stack tunnel|--local-port') words='' ;;
        'stack tunnel|--region') words='' ;;
        'stack tunnel|--profile') words='' ;;
        'stack tunnel|--endpoint-url') words='' ;;
        'stack validate|--template') words='' ;;
        'stack validate|-t') words='' ;;
        'stack validate|--region') words='' ;;
        'stack validate|--output') words='table json csv' ;;
        'stack validate|-o') words='table json csv' ;;
        *) return 1 ;;
        esac ;;
    esac
    printf '%s' "$words"
}

_mcpadmin() {
    local cur prev path='' w i
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        [[ "$w" == -* ]] && continue
        if [[ " $(_mcpadmin_words "$path" sub) " == *" $w "* ]]; then
            path="${path:+$path }$w"
        fi
    done
    local values
    if values=$(_mcpadmin_words "$path" val "$prev"); then
        if [[ -n "$values" ]]; then
            COMPREPLY=($(compgen -W "$values" -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_mcpadmin_words "$path" opt)" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$(_mcpadmin_words "$path" sub)" -- "$cur"))
    fi
}
complete -F _mcpadmin mcpadmin
