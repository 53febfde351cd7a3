# Sourced: sets PG_BINDIR to the folder holding initdb and pg_ctl,
# installing Debian's `postgresql` package (and openssl) when they are missing.
pg_bindir() {
    if command -v initdb >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v initdb)")"; return; fi
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
    dpkg-query -W -f '${Package}\n' 'postgresql-[0-9]*' 2>/dev/null | grep -E '^postgresql-[0-9]+$' | sort -V | tail -1 |
        xargs -r dpkg -L 2>/dev/null | grep '/bin/initdb$' | head -1 | xargs -r dirname
}
if [ -z "${PG_BINDIR:-}" ]; then
    PG_BINDIR=$(pg_bindir || true)
    if [ -z "$PG_BINDIR" ] || ! command -v openssl >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql openssl >/dev/null
        PG_BINDIR=$(pg_bindir)
    fi
    export PG_BINDIR
fi
