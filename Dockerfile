# syntax=docker/dockerfile:1
# Build: debian 12 with FFmpeg 5.1 development packages; libjpeg-turbo 3.x is vendored and built
# by the turbojpeg crate (cmake + nasm).
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      pkg-config clang libclang-dev cmake nasm \
      libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libavfilter-dev libavdevice-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --workspace \
 && install -D -m 0755 target/release/frameserver /out/frameserver \
 && install -D -m 0755 target/release/manifest /out/manifest

# Run: debian 12 slim with only the FFmpeg runtime libraries we link.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libavformat59 libavcodec59 libavutil57 libswscale6 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/frameserver frameserver
COPY --from=build /out/ /usr/local/bin/
USER frameserver
WORKDIR /var/lib/frameserver
ENTRYPOINT ["frameserver"]
CMD ["--help"]
