from busybox as Build
run echo
CoPy a b
