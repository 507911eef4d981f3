# kiln's everyday commands. `just --list` shows them.

# Run the test suite (what CI runs besides fmt and clippy: see `lint`).
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt

# Everything CI runs.
ci:
    .ci/run

# The compile benchmark: 1,000 and 10,000 generated images (add `--dir /dev/shm` to leave the disk out).
bench *ARGS:
    cargo build --release -p kiln -p kiln-bench
    ./target/release/kiln-bench {{ARGS}}

# The build scheduling benchmark: kiln -j 2/-j 4 against a serial docker loop and docker-compose.
bench-build *ARGS:
    cargo build --release -p kiln -p kiln-bench
    ./target/release/kiln-bench build {{ARGS}}

# A rebuild where nothing changed (50 images x 5 MB contexts), against docker-compose build.
bench-noop *ARGS:
    cargo build --release -p kiln -p kiln-bench
    ./target/release/kiln-bench noop {{ARGS}}

# A fresh engine whose registry holds every image (20 images): kiln build --push.
bench-registry *ARGS:
    cargo build --release -p kiln -p kiln-bench
    ./target/release/kiln-bench registry {{ARGS}}

# The scheduling graph on a pool: two engines x 2 slots against one engine x 4 and x 2.
bench-pool *ARGS:
    cargo build --release -p kiln -p kiln-bench
    ./target/release/kiln-bench pool {{ARGS}}

# Image quality on three real apps (Flask, a C extension against libpq, Node) on a debootstrap
# Debian base: naive and expert Dockerfiles against kiln. Needs the network (real packages),
# root, debootstrap and hadolint; not run in CI.
bench-images *ARGS:
    cargo build --release -p kiln -p kiln-bench
    ./target/release/kiln-bench images {{ARGS}}

# Build the examples' test versions on a local busybox base image (needs dockerd and busybox-static).
demo-build:
    cargo build -q -p kiln
    docker image inspect kiln-test/busybox:1 >/dev/null 2>&1 || (root=$(mktemp -d) && mkdir -p $root/bin $root/tmp $root/etc && cp /bin/busybox $root/bin/ && for a in $(/bin/busybox --list); do [ $a = busybox ] || ln -s busybox $root/bin/$a; done && echo 'root:x:0:0:root:/root:/bin/sh' > $root/etc/passwd && echo 'root:x:0:' > $root/etc/group && tar -C $root -c . | docker import - kiln-test/busybox:1 && rm -rf $root)
    cd tests/build-examples/monorepo && ../../../target/debug/kiln build --network none default api.debug
    docker run --rm --network none --pull never kiln-it/monorepo/worker:latest

# Regenerate the committed files of every example.
emit-examples:
    for dir in examples/*/; do cargo run -q -p kiln -- -f "$dir/kiln.kdl" emit; done

# Regenerate the JSON Schemas under schema/.
schema:
    cargo run -q -p kiln -- schema plan > schema/plan.schema.json
    cargo run -q -p kiln -- schema manifest > schema/manifest.schema.json
    cargo run -q -p kiln -- schema build-events > schema/build-events.schema.json

# Accept the snapshot changes of the last test run (review them first!).
accept-snapshots:
    INSTA_UPDATE=always cargo test --workspace
