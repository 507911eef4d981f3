FROM busybox
HEALTHCHECK --interval=5s --timeout=2s CMD curl -f http://x/
HEALTHCHECK CMD ["true"]
HEALTHCHECK NONE
HEALTHCHECK
