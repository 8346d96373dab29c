#!/bin/sh
# The altapp has no /healthz (the contract makes it optional): point the reference HAProxy's
# health checks at GET /api/status for www.foobar.com instead, as a student whose application
# has no health path would. Run as root on the load balancer after altapp-deploy.sh ran on
# every web host; without it both servers fail their checks and HAProxy answers 503.
set -eu

CFG=/etc/haproxy/haproxy.cfg
if grep -q '^ *option httpchk GET /healthz$' "$CFG"; then
    sed -i 's|^\( *\)option httpchk GET /healthz$|\1option httpchk\n\1http-check send meth GET uri /api/status ver HTTP/1.1 hdr Host www.foobar.com|' "$CFG"
fi
haproxy -c -q -f "$CFG"
systemctl reload haproxy
echo "HAProxy health-checks GET /api/status on $(hostname)"
