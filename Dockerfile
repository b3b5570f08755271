# cpm-focus container image: the release binary only, run as an unprivileged user.
#
#   docker build -t cpm-focus --build-arg CPM_FOCUS_GIT_REV=$(git rev-parse --short=12 HEAD) .
#   docker compose up            # the focus with Prometheus and Grafana (compose.yaml)
#
# The focus reads /etc/cpm-focus/focus.toml (the shipped default, listening on every address;
# mount your own over it). RTP for talk-burst groups uses a UDP port range: run with host
# networking (docs/operations.md says why).

FROM rust:1.85-bookworm AS build
WORKDIR /src
# The build embeds the git revision (`--version`, focus_build_info); the context carries no
# .git, so pass it in.
ARG CPM_FOCUS_GIT_REV=unknown
ENV CPM_FOCUS_GIT_REV=${CPM_FOCUS_GIT_REV}
COPY . .
RUN cargo build --release --locked --bin cpm-focus \
    && strip target/release/cpm-focus \
    && target/release/cpm-focus check-config config/focus.toml

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cpm-focus \
    && mkdir -p /etc/cpm-focus /var/lib/cpm-focus \
    && chown cpm-focus:cpm-focus /var/lib/cpm-focus
COPY --from=build /src/target/release/cpm-focus /usr/local/bin/cpm-focus
COPY config/container.toml /etc/cpm-focus/focus.toml
USER cpm-focus:cpm-focus
WORKDIR /var/lib/cpm-focus
# SIP UDP/TCP, SIP over TLS, MSRP, metrics, admin (loopback only without admin.token).
EXPOSE 5060/udp 5060/tcp 5061/tcp 2855/tcp 9464/tcp
ENTRYPOINT ["/usr/local/bin/cpm-focus"]
CMD ["--config", "/etc/cpm-focus/focus.toml"]
