#!/bin/sh
# The container's entry point: apply migrations first when MONITOR_MIGRATE=1, then become the
# command. A first word that is not a program on PATH is a monitor subcommand, so both
# `docker run IMAGE poll --once` and `docker run IMAGE monitor poll --once` work.
set -eu

# A program file on PATH (not a shell builtin such as eval: that name is a monitor subcommand).
is_program() {
    case "$1" in
        */*) [ -f "$1" ] && [ -x "$1" ]; return ;;
    esac
    set -f
    saved_ifs=$IFS
    IFS=:
    for dir in $PATH; do
        if [ -f "${dir:-.}/$1" ] && [ -x "${dir:-.}/$1" ]; then
            IFS=$saved_ifs
            set +f
            return 0
        fi
    done
    IFS=$saved_ifs
    set +f
    return 1
}

if [ "$#" -eq 0 ]; then
    set -- monitor run
elif ! is_program "$1"; then
    set -- monitor "$@"
fi

if [ "${MONITOR_MIGRATE:-0}" = "1" ]; then
    echo "entrypoint: applying database migrations" >&2
    monitor db upgrade
fi

exec "$@"
