# effbench in a container, for `effbench k8s --image` and anyone without a Rust toolchain.
# Two stages: the build stage compiles the release binary with the locked dependencies; the
# runtime image holds only the binary, the shipped suites and the CA certificates the
# openai-http backend needs for https targets (no Rust toolchain, no sources).
#
#   docker build -t effbench:0.1 .
#   docker run --rm effbench:0.1 run quickstart
#   effbench k8s suites/quickstart.toml --shards 8 --image registry.example.com/effbench:0.1 ...
#
# The image is CPU-only (`--features cuda` needs nvcc and CUDA images; see docs/cuda.md).
# The `process` suites need python3 and the repository's backends/workers/ (not included).

# The toolchain is the workspace's rust-version (Cargo.toml).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY harness harness
COPY backends backends
COPY dashboards dashboards
COPY src src
COPY benches benches
COPY suites suites
# A dependency-free portable build (x86-64-v3 as in .cargo/config.toml); the results are
# written under /work (mount a volume there), models under results/models/.
RUN cargo build --release --locked --bin effbench && strip target/release/effbench

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/effbench /usr/local/bin/effbench
COPY --from=build /src/suites /usr/share/effbench/suites
# `effbench run quickstart` and `effbench list suites` find the shipped suites here.
ENV EFFBENCH_SUITES=/usr/share/effbench/suites
RUN useradd --create-home --uid 10001 effbench && mkdir /work && chown effbench /work
USER effbench
WORKDIR /work
ENTRYPOINT ["effbench"]
CMD ["--help"]
