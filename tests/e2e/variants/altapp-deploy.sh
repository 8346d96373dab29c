#!/bin/sh
# Switch one web host of a provisioned reference lab to the altapp code base, the way a student
# would build it: its own user, files in /opt/guest, gunicorn on a unix socket under guest.service,
# settings in /etc/guest/guest.ini, and an Nginx server block in conf.d that replaces the
# reference site. Run as root on every web host, after altapp-db.sh ran on the primary.
#
#   usage: altapp-deploy.sh SOURCE_DIR        (the altapp folder, already copied to the host)
#   environment (required):
#     GUEST_PRIMARY          the primary database server's address, e.g. 192.168.56.11
#     GUEST_READ_PASSWORD    password of guest_ro@localhost      ([A-Za-z0-9_-] only)
#     GUEST_WRITE_PASSWORD   password of guest_rw@<lab network>  ([A-Za-z0-9_-] only)
#
# Running it again redeploys the files and restarts the services.
set -eu

SOURCE=${1:?usage: altapp-deploy.sh SOURCE_DIR}
: "${GUEST_PRIMARY:?set GUEST_PRIMARY to the primary database address}"
: "${GUEST_READ_PASSWORD:?set GUEST_READ_PASSWORD}"
: "${GUEST_WRITE_PASSWORD:?set GUEST_WRITE_PASSWORD}"
for value in "$GUEST_READ_PASSWORD" "$GUEST_WRITE_PASSWORD"; do
    case $value in *[!A-Za-z0-9_-]*) echo "passwords may hold only A-Z a-z 0-9 _ -" >&2; exit 2 ;; esac
done
case $GUEST_PRIMARY in *[!0-9.]*) echo "GUEST_PRIMARY must be an IPv4 address" >&2; exit 2 ;; esac
[ -f "$SOURCE/guest.py" ] || { echo "$SOURCE has no guest.py" >&2; exit 2; }

# the reference application server goes away for good
if systemctl cat webstack-app.service >/dev/null 2>&1; then
    systemctl disable --quiet --now webstack-app.service
fi

id -u guest >/dev/null 2>&1 || useradd --system --home-dir /opt/guest --shell /usr/sbin/nologin guest

rm -rf /opt/guest
mkdir -p /opt/guest
cp -R "$SOURCE"/. /opt/guest/
find /opt/guest -name __pycache__ -prune -exec rm -rf {} +
chown -R root:root /opt/guest
chmod -R u=rwX,go=rX /opt/guest

install -d -m 0750 -o root -g guest /etc/guest
umask 027
cat > /etc/guest/guest.ini <<INI
[database]
schema = gb
socket = /run/mysqld/mysqld.sock
reader = guest_ro
reader_password = $GUEST_READ_PASSWORD
primary = $GUEST_PRIMARY
primary_port = 3306
writer = guest_rw
writer_password = $GUEST_WRITE_PASSWORD
INI
chown root:guest /etc/guest/guest.ini
chmod 0640 /etc/guest/guest.ini
umask 022

# nginx (www-data) reaches the socket through the group; nobody else does
cat > /etc/systemd/system/guest.service <<'UNIT'
[Unit]
Description=foobar.com guestbook (gunicorn on a unix socket)
After=network.target mariadb.service

[Service]
User=guest
Group=www-data
SupplementaryGroups=guest
RuntimeDirectory=guest
RuntimeDirectoryMode=0750
ExecStart=/usr/bin/gunicorn --chdir /opt/guest --workers 3 --worker-class gthread --threads 2 --umask 007 --bind unix:/run/guest/guest.sock guest:application
ExecReload=/bin/kill -HUP $MAINPID
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --quiet guest.service
systemctl restart guest.service

cat > /etc/nginx/conf.d/guest.conf <<'SITE'
server {
    listen 80;
    server_name www.foobar.com foobar.com;

    add_header X-Served-By $hostname;

    root /opt/guest/assets;
    location = / {
        try_files /home.html =404;
    }
    location /assets/ {
        alias /opt/guest/assets/;
    }
    location /api/ {
        proxy_pass http://unix:/run/guest/guest.sock;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
}
SITE
rm -f /etc/nginx/sites-enabled/webstack
nginx -t -q
systemctl reload nginx

# ready when the application answers through Nginx
tries=0
until curl -fs -o /dev/null -H 'Host: www.foobar.com' http://127.0.0.1/api/status; do
    tries=$((tries + 1))
    [ "$tries" -lt 50 ] || { echo "the guestbook does not answer through Nginx" >&2; exit 1; }
    sleep 0.2
done
echo "altapp deployed on $(hostname)"
