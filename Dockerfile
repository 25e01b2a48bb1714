# The image `sweep k8s` runs: `docker build -t sweep .` from the repository root (the cold build of
# polars and faer takes 10-30 minutes on 2 cores). The build id comes from the copied .git folder.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin sweep

FROM debian:bookworm-slim
# The figures of `sweep report` need a TrueType font.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/sweep /usr/local/bin/sweep
CMD ["sweep", "--help"]
