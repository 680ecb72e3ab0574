# Build: docker build -t presence .   Run: docker run -p 8080:8080 presence
# The same build as plain commands:
#   CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o presence-server . && ./presence-server
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/presence .

# distroless/static: no shell, no package manager, runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/presence /presence
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/presence"]
