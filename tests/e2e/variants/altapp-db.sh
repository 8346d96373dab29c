#!/bin/sh
# The altapp's database on the primary of a provisioned reference lab: database gb, table posts,
# and the altapp's own accounts (the replica gets all of it through replication). Run as root on
# the primary database host, before altapp-deploy.sh on the web hosts.
#
#   environment:
#     GUEST_READ_PASSWORD    password for guest_ro@localhost: SELECT on gb.*           (required)
#     GUEST_WRITE_PASSWORD   password for guest_rw@GUEST_NETWORK: SELECT, INSERT, DELETE on gb.*
#                                                                                    (required)
#     GUEST_NETWORK          account host of the write account (default: this host's /24, e.g.
#                            192.168.56.%); the web servers write to the primary over TCP from it
#   Passwords may hold only A-Z a-z 0-9 _ - (they go into SQL). Running it again changes nothing
#   but the passwords.
set -eu

: "${GUEST_READ_PASSWORD:?set GUEST_READ_PASSWORD}"
: "${GUEST_WRITE_PASSWORD:?set GUEST_WRITE_PASSWORD}"
for value in "$GUEST_READ_PASSWORD" "$GUEST_WRITE_PASSWORD"; do
    case $value in *[!A-Za-z0-9_-]*) echo "passwords may hold only A-Z a-z 0-9 _ -" >&2; exit 2 ;; esac
done
NETWORK=${GUEST_NETWORK:-$(hostname -I | awk '{print $1}' | cut -d. -f1-3).%}
case $NETWORK in *[!0-9.%]*) echo "GUEST_NETWORK must look like 192.168.56.%" >&2; exit 2 ;; esac

mysql <<SQL
CREATE DATABASE IF NOT EXISTS gb CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE TABLE IF NOT EXISTS gb.posts (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    author VARCHAR(64) NOT NULL,
    body VARCHAR(280) NOT NULL,
    origin VARCHAR(64) NOT NULL,
    posted_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
);
CREATE USER IF NOT EXISTS 'guest_ro'@'localhost' IDENTIFIED BY '$GUEST_READ_PASSWORD';
ALTER USER 'guest_ro'@'localhost' IDENTIFIED BY '$GUEST_READ_PASSWORD';
GRANT SELECT ON gb.* TO 'guest_ro'@'localhost';
CREATE USER IF NOT EXISTS 'guest_rw'@'$NETWORK' IDENTIFIED BY '$GUEST_WRITE_PASSWORD';
ALTER USER 'guest_rw'@'$NETWORK' IDENTIFIED BY '$GUEST_WRITE_PASSWORD';
GRANT SELECT, INSERT, DELETE ON gb.* TO 'guest_rw'@'$NETWORK';
SQL
echo "database gb and accounts guest_ro@localhost, guest_rw@$NETWORK ready on $(hostname)"
