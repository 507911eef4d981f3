FROM busybox
RUN <<EOF
echo a
EOF
RUN <<-EOF
	echo tabs
	EOF
RUN <<'Q' cat > /q
$x
Q
RUN 3<<A cat /dev/fd/3 && cat <<B
a
A
b
B
COPY <<EOF /f
content
EOF
RUN echo <<notheredoc
RUN ["<<EOF"]
ENV X=<<EOF
