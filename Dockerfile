# keelson's container image: multi-stage, non-root, for a read-only root
# filesystem (state and temporary files go to the volumes deploy/ mounts).
#   docker build -t keelson:0.1.0 .      (or: buildah bud -t keelson:0.1.0 .)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p keelson --bin keelson \
 && strip target/release/keelson

FROM debian:bookworm-slim
# git2 links libgit2 statically; TLS uses rustls with its own roots for
# kube and the system roots (ca-certificates) for Git and Rancher.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/keelson /usr/local/bin/keelson
USER 65532:65532
WORKDIR /var/lib/keelson
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/keelson"]
CMD ["run", "--config", "/etc/keelson/config/keelson.yaml"]
