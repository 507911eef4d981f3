FROM busybox
RUN <<"END"
x
END
RUN <<E\OF
y
EOF
RUN cat <<EOF>file
z
EOF>file
