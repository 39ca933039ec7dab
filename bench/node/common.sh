# Sourced by bench/node/rpc-load.sh and rpc-cost.sh: builds to compare, and the two pollers.
# A build is "label=DIR[,VAR=VALUE…]": DIR/peerway.dll (a published CLI, e.g. a copy of .build/cli made before a change)
# run as `peerway node` with the environment VAR=VALUE… (a knob to try). The default is this tree's build as the
# launcher runs it (its runtimeconfig already sets the thread-pool spin limit to 0).
default_builds="peerway=$here/.build/cli"
build_label() { echo "${1%%=*}"; }
build_dir() { local rest="${1#*=}"; echo "${rest%%,*}"; }
build_env() { local rest="${1#*=}"; [ "$rest" = "${rest#*,}" ] || echo "${rest#*,}" | tr ',' ' '; }
run_node() { # run_node BUILD ARGS… (in the background: the caller takes $!)
  local b="$1"; shift
  # shellcheck disable=SC2046 # the VAR=VALUE words are split on purpose
  exec env $(build_env "$b") dotnet "$(build_dir "$b")/peerway.dll" node "$@"
}
# Pollers: "python" (bench/node/rpc_pollers.py, asyncio) or "dotnet" (bench/node/RpcPollers: the same clients at a
# fraction of the CPU; socket completions run inline on the runtime's epoll thread, no thread-pool hop per answer).
build_pollers() { # build_pollers KIND… (builds the C# poller once if asked for)
  case " $* " in *" dotnet "*) dotnet build "$here/bench/node/RpcPollers" -c Release --nologo -v quiet >&2 ;; esac
}
run_pollers() { # run_pollers KIND URL CLIENTS INTERVAL_S (in the background: the caller takes $!)
  case "$1" in
    python) exec python3 "$here/bench/node/rpc_pollers.py" "$2" "$3" "$4" ;;
    dotnet) DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 exec dotnet "$here/bench/node/RpcPollers/bin/Release/net10.0/RpcPollers.dll" "$2" "$3" "$4" ;;
    *) echo "unknown poller '$1' (python or dotnet)" >&2; exit 2 ;;
  esac
}
