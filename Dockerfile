# The image `make image` builds without a container engine (tools/cmd/image),
# for those who prefer one: the same single layer on an empty base, user,
# entrypoint, command and ports. tools/image/dockerfile_test.go checks that
# this file and the Go builder agree.

# ---- build ------------------------------------------------------------------
FROM golang:1.26 AS builder

WORKDIR /src

# Module downloads are cached in their own layer; they only re-run when the
# dependency graph changes.
COPY go.mod go.sum ./
RUN go mod download

COPY . .

# A static, stripped binary with no build paths embedded (test/controlplane,
# test/istiodiff and tools are separate modules and not part of this build),
# and the files an empty base lacks (tools/image/rootfs: passwd and group
# naming 65532 "nonroot"; /tmp as on distroless), gathered in /rootfs so that
# the runtime stage copies them as one layer, as the Go builder does.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' \
      -o /rootfs/sidecar-webhook ./cmd/sidecar-webhook && \
    chmod 0555 /rootfs/sidecar-webhook && \
    mkdir -p /rootfs/etc && \
    install -m 0644 tools/image/rootfs/etc/passwd tools/image/rootfs/etc/group /rootfs/etc/ && \
    mkdir -m 1777 /rootfs/tmp

# ---- runtime ----------------------------------------------------------------
FROM scratch

COPY --from=builder /rootfs/ /

# Numeric, so the kubelet can check runAsNonRoot; the Deployment's
# securityContext (runAsUser/runAsGroup 65532) matches.
USER 65532:65532

# 9443 webhook (HTTPS), 8080 metrics, 8081 health probes.
EXPOSE 9443 8080 8081

ENTRYPOINT ["/sidecar-webhook"]
CMD ["serve"]

ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.source="https://github.com/sidecar-webhook/sidecar-webhook" \
      org.opencontainers.image.title="sidecar-webhook" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
