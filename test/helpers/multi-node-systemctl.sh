#!/bin/sh
# Test only: the `systemctl` of a node of the multi-node test cluster (no systemd in these
# namespaces), installed there as /usr/local/bin/systemctl and /usr/bin/systemctl. It knows one
# unit, kubelet, and does what kubeadm and a tool run over ssh ask of it: start, stop, restart,
# is-active, is-enabled, enable, status, daemon-reload. The kubelet runs under
# multi-node-kubelet.sh, which restarts it when it exits, as kubeadm's systemd unit does.
set -eu
sup=/run/kubelet-supervisor.pid
pidf=/run/kubelet.pid
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop() {
  for f in "$sup" "$pidf"; do
    if alive "$f"; then
      p=$(cat "$f")
      kill "$p" 2>/dev/null || true
      i=0
      while kill -0 "$p" 2>/dev/null && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
      kill -9 "$p" 2>/dev/null || true
    fi
    rm -f "$f"
  done
}
start() {
  alive "$sup" && return 0
  # setsid: out of the caller's session (an ssh session's end must not stop it)
  setsid sh /usr/local/lib/kf-kubelet.sh >>/var/log/kubelet.log 2>&1 </dev/null &
  echo $! >"$sup"
}
verb=
unit=
for a in "$@"; do
  case $a in
    -*) ;;
    *) if [ -z "$verb" ]; then verb=$a; elif [ -z "$unit" ]; then unit=${a%.service}; fi ;;
  esac
done
case $verb in
  daemon-reload) exit 0 ;;
esac
if [ "$unit" != kubelet ]; then
  echo "Unit $unit.service could not be found." >&2
  exit 4
fi
case $verb in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  enable | disable) ;;
  is-enabled) echo enabled ;;
  # between two runs of the kubelet (it exits until kubeadm wrote its files) systemd says
  # "activating", as kubeadm expects of a crash-looping kubelet
  is-active)
    if alive "$pidf"; then echo active
    elif alive "$sup"; then echo activating; exit 3
    else echo inactive; exit 3; fi ;;
  status)
    echo "* kubelet.service - kubelet (test cluster)"
    echo "   Loaded: loaded"
    if alive "$pidf"; then echo "   Active: active (running) pid $(cat "$pidf")"; else echo "   Active: inactive (dead)"; exit 3; fi ;;
  *) echo "systemctl (test cluster): $verb is not supported" >&2; exit 1 ;;
esac
