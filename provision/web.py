"""Nginx on each web host: static files itself, dynamic requests to the app, X-Served-By."""

from provision.app import APP_BIND, APP_DIR
from provision.runner import Component, Run

SITE = "/etc/nginx/sites-available/webstack"


def configure(run: Run) -> None:
    def step(hr, host):
        changed = hr.template(
            SITE,
            "nginx-site.conf.j2",
            host=host.name,
            domain=run.topology.domain,
            app_dir=APP_DIR,
            app_bind=APP_BIND,
        )
        changed |= hr.link("/etc/nginx/sites-enabled/webstack", SITE)
        changed |= hr.absent("/etc/nginx/sites-enabled/default")
        if changed:
            hr.validate("nginx -t", "the Nginx configuration")
        hr.service("nginx", reload=changed)

    run.each("web", step, "web")


COMPONENT = Component(
    name="web",
    title="web server (Nginx)",
    roles=("web",),
    apply=configure,
    packages=lambda run, host: ("nginx",),
)
