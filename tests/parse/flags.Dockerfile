FROM --platform=linux/amd64 busybox AS b
COPY --from=b --chown="a b:c" --chmod=755 --link x y
COPY --chown='${U}:${G}' --link=false x y
RUN --mount=type=cache,target=/x --mount=type=secret,id=s --network=none echo
RUN --mount="type=bind,source=a b" echo
COPY -- --not-a-flag y
ADD --keep-git-dir=true x y
