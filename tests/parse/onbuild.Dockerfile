FROM busybox
ONBUILD RUN echo hi
ONBUILD COPY --from=x a b
ONBUILD
ONBUILD CMD ["a"]
