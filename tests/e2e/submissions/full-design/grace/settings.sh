# Settings shared by the setup scripts (sourced by each of them)
# Test case grace: the whole design, built by a student's own scripts on brand-new Debian servers.
# The lab passes the servers' addresses in LAB_LB_01, LAB_WEB_01, LAB_WEB_02, the domain in
# LAB_DOMAIN and this server's name in LAB_HOST.

: "${LAB_LB_01:?LAB_LB_01 must hold the address of lb-01}"
: "${LAB_WEB_01:?LAB_WEB_01 must hold the address of web-01}"
: "${LAB_WEB_02:?LAB_WEB_02 must hold the address of web-02}"
: "${LAB_DOMAIN:=foobar.com}"
: "${LAB_HOST:=$(hostname)}"

export DEBIAN_FRONTEND=noninteractive

APP_DIR=/var/www/guestbook
APP_USER=guestbook
APP_SOCKET=/run/guestbook/gunicorn.sock
DB_NAME=guestbook
DB_WRITER=gb_writer
DB_READER=gb_reader
DB_REPLICATOR=gb_replicator
# the student's own passwords (a course's servers would keep them out of the repository)
DB_WRITER_PASSWORD=${DB_WRITER_PASSWORD:-grace-writes-2f9c1d}
DB_READER_PASSWORD=${DB_READER_PASSWORD:-grace-reads-77ab03}
DB_REPLICATOR_PASSWORD=${DB_REPLICATOR_PASSWORD:-grace-replicates-5e01c4}

# install packages only when one is missing (a re-run downloads nothing)
install_packages() {
    local package missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        apt-get update -q
        apt-get install -y -q "${missing[@]}"
    fi
}

# write stdin to a file if it differs; succeeds only when the file changed
put() {
    local path=$1 mode=${2:-0644} tmp
    tmp=$(mktemp)
    cat > "$tmp"
    if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        return 1
    fi
    install -D -m "$mode" "$tmp" "$path"
    rm -f "$tmp"
    echo "wrote $path"
}
