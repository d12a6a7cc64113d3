# ---- build ------------------------------------------------------------------
FROM golang:1.26 AS builder

WORKDIR /src

# Module downloads are cached in their own layer; they only re-run when the
# dependency graph changes.
COPY go.mod go.sum ./
RUN go mod download

COPY . .

# A static, stripped binary with no build paths embedded. test/controlplane is
# a separate module and is not part of this build.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' \
      -o /out/sidecar-webhook ./cmd/sidecar-webhook

# ---- runtime ----------------------------------------------------------------
FROM gcr.io/distroless/static:nonroot

COPY --from=builder /out/sidecar-webhook /sidecar-webhook

# 65532 is distroless's "nonroot"; the Deployment's securityContext matches.
USER 65532:65532

# 9443 webhook (HTTPS), 8080 metrics, 8081 health probes.
EXPOSE 9443 8080 8081

ENTRYPOINT ["/sidecar-webhook"]
CMD ["serve"]
