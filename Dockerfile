# mcp-fileserver: the frozen one-folder build on an otherwise empty image.
#
#   make docker                  # = docker build -t mcp-fileserver:<version> .
#   docker build --build-arg PYTHON_IMAGE=local/python:3.11-slim-bookworm .  # offline base
#
# Run it (see docs/deploy.md for what each flag protects against):
#   docker run -i --rm --init --read-only --tmpfs /tmp:rw,noexec,nosuid,size=64m \
#     --cap-drop ALL --security-opt no-new-privileges --network none --user 10001:10001 \
#     -v "$HOME/Documents:/data:ro" -v mcp-fileserver-logs:/logs \
#     mcp-fileserver:0.1.0 --allow /data
#
# Encrypted secrets (docs/secrets.md): mount the age file read-only and the identity as a
# Docker secret owned by 10001 with mode 0400:
#   -v "$PWD/secrets.age:/config/secrets.age:ro" -e MCP_FILESERVER_SECRETS_FILE=/config/secrets.age
#   -v "$PWD/age-identity.txt:/run/secrets/age_identity:ro" \
#   -e MCP_FILESERVER_AGE_IDENTITY_FILE=/run/secrets/age_identity
#
# Stage 1 builds the PyInstaller bundle with the base image's Python; stage 2 is `scratch`
# plus that bundle, the C libraries it links against, tini, a CA bundle and a passwd line:
# no shell, no package manager, no pip, no compiler, no Python outside the bundle.

# Any Debian-based Python >= 3.11 image: the official one by default.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PYTHONDONTWRITEBYTECODE=1

# Optional CA certificates for TLS-inspecting proxies (config/docker/extra-ca/*.crt|*.pem).
COPY config/docker/extra-ca/ /tmp/extra-ca/
RUN set -eu; \
    mkdir -p /usr/local/share/ca-certificates/extra /etc/ssl/certs; \
    n=0; \
    for cert in /tmp/extra-ca/*.crt /tmp/extra-ca/*.pem; do \
      [ -f "$cert" ] || continue; n=$((n + 1)); \
      cp "$cert" "/usr/local/share/ca-certificates/extra/extra-$n.crt"; \
      if ! command -v update-ca-certificates >/dev/null; then \
        cat "$cert" >> /etc/ssl/certs/ca-certificates.crt; fi; \
    done; \
    if [ "$n" -gt 0 ] && command -v update-ca-certificates >/dev/null; then \
      update-ca-certificates >/dev/null; fi; \
    echo "extra CA files: $n"

# tini: a minimal init that forwards signals and reaps children (also fine under --init).
# binutils: PyInstaller reads shared-library dependencies with objdump (build stage only).
# libpythonX.Y: the shared libpython PyInstaller bundles, when the base's python3 is
# Debian's own (the official images build Python with --enable-shared already).
# gcc, libmariadb-dev (and Debian's Python headers): pip builds the MariaDB driver from
# its sdist (no Linux wheel); the bundle then carries libmariadb.so.3 and its client
# plugins, so the runtime stage gets no compiler and no headers.
RUN set -eu; \
    packages="tini binutils gcc libc6-dev libmariadb-dev"; \
    if dpkg -S "$(readlink -f "$(command -v python3)")" >/dev/null 2>&1; then \
      packages="$packages $(python3 -c 'import sys; print("libpython%d.%d python3-dev" % sys.version_info[:2])')"; \
    fi; \
    apt-get update -qq; \
    apt-get install -y -qq --no-install-recommends $packages >/dev/null; \
    rm -rf /var/lib/apt/lists/*

# Dependencies first (cached until the lock changes), then our package: the hashed
# lockfile for the runtime plus PyInstaller (config/lock/freeze.txt, `make lock`), so
# the image holds exactly the versions CI tested.
WORKDIR /src
COPY config/lock/freeze.txt /tmp/freeze.txt
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --quiet --require-hashes -r /tmp/freeze.txt
COPY pyproject.toml README.md ./
COPY mcp_fileserver ./mcp_fileserver
COPY config/pyinstaller ./config/pyinstaller
RUN /opt/venv/bin/pip install --quiet --no-deps . \
    && /opt/venv/bin/pyinstaller --noconfirm --log-level WARN \
       --distpath /dist --workpath /tmp/pyinstaller config/pyinstaller/mcp-fileserver.spec

# The runtime file system: the bundle, the system libraries it needs and does not carry
# (PyInstaller leaves glibc out on purpose; glibc loads libgcc_s at thread exit), tini,
# the CA bundle. ldd resolves the bundle's libraries with the bundle first, as the
# bootloader arranges at run time (LD_LIBRARY_PATH=/app/_internal), so nothing the bundle
# holds is copied twice; the bootloader itself starts before that, from system paths.
RUN set -eu; \
    R=/rootfs; \
    mkdir -p $R/app $R/usr/bin $R/etc/ssl/certs $R/tmp $R/data $R/run/secrets /owned/logs; \
    cp -a /dist/mcp-fileserver/. $R/app/; \
    cp /usr/bin/tini-static $R/usr/bin/tini; \
    cp /etc/ssl/certs/ca-certificates.crt $R/etc/ssl/certs/; \
    gcc_s=$(ldconfig -p | awk '$1 == "libgcc_s.so.1" { print $NF; exit }'); \
    { ldd $R/app/mcp-fileserver; \
      find $R/app -type f \( -name '*.so*' -o -perm -u+x \) \
        -exec env LD_LIBRARY_PATH=$R/app/_internal ldd {} \; 2>/dev/null; } \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' \
      | { cat; echo "$gcc_s"; } \
      | grep -v "^$R/" | sort -u | while read -r lib; do cp -L --parents "$lib" $R/; done; \
    echo 'mcp:x:10001:10001:mcp-fileserver:/nonexistent:/sbin/nologin' > $R/etc/passwd; \
    echo 'mcp:x:10001:' > $R/etc/group; \
    chmod 1777 $R/tmp; chmod 0700 /owned/logs; \
    chown -R root:root $R/app; chmod -R a+rX,go-w $R/app

FROM scratch
COPY --from=build /rootfs/ /
# The audit log folder belongs to the runtime user (a named volume mounted here inherits it).
COPY --from=build --chown=10001:10001 /owned/ /
ENV LANG=C.UTF-8 \
    PATH=/app:/usr/bin \
    HOME=/tmp \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    TINI_SUBREAPER=1 \
    MCP_FILESERVER_LOG_DIR=/logs
LABEL org.opencontainers.image.title="mcp-fileserver" \
      org.opencontainers.image.description="Security-first, read-only MCP server for files and SQL (stdio)" \
      org.opencontainers.image.licenses="MIT"
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["/usr/bin/tini", "--", "/app/mcp-fileserver"]
