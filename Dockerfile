# impostor container image: docker build -t impostor . ; see docs/deployment.md ("Container").
# Stage 1 builds the release binary; stage 2 is Debian slim with the binary, the default
# configuration (listening on all container interfaces) and an unprivileged user.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin impostor \
 && strip target/release/impostor

FROM debian:bookworm-slim
RUN groupadd --system impostor \
 && useradd --system --gid impostor --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin impostor
COPY --from=builder /src/target/release/impostor /usr/bin/impostor
COPY deploy/impostor.toml /etc/impostor/impostor.toml
# Inside a container, 127.0.0.1 is unreachable from the MTA: listen on all interfaces
# (publish the port on the host's loopback: docker run -p 127.0.0.1:7357:7357 ...).
# The check fails the build if the default lines ever change.
RUN sed -i -e 's|^socket = "inet:127.0.0.1:7357"$|socket = "inet:0.0.0.0:7357"|' \
           -e 's|^listen = "127.0.0.1:9357"$|listen = "0.0.0.0:9357"|' /etc/impostor/impostor.toml \
 && impostor config check -c /etc/impostor/impostor.toml \
 && impostor config show -c /etc/impostor/impostor.toml | grep -qx 'socket = "inet:0.0.0.0:7357"' \
 && impostor config show -c /etc/impostor/impostor.toml | grep -qx 'listen = "0.0.0.0:9357"'
USER impostor
# milter socket; 9357 is the Prometheus /metrics endpoint
EXPOSE 7357 9357
CMD ["impostor", "serve", "-c", "/etc/impostor/impostor.toml"]
