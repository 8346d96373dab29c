"""The lab's own DNS: NSD, authoritative for the domain, www pointing at the site's address."""

from provision.engine import render
from provision.runner import Component, Run, zone_serial


def zone_text(run: Run) -> str:
    """The zone file, its serial derived from its records."""
    values = dict(
        domain=run.topology.domain,
        hosts=run.topology.hosts,
        lb_address=run.topology.site_address,  # the virtual address, if any
        ns_address=run.topology.one_with_role("dns").address,
    )
    return render("zone.j2", serial=zone_serial(render("zone.j2", serial=0, **values)), **values)


def configure(run: Run) -> None:
    domain = run.topology.domain

    def step(hr, host):
        changed = hr.template(
            "/etc/nsd/nsd.conf", "nsd.conf.j2", address=host.address, domain=domain
        )
        changed |= hr.file(f"/etc/nsd/{domain}.zone", zone_text(run))
        if changed:
            hr.validate("nsd-checkconf /etc/nsd/nsd.conf", "the NSD configuration")
            hr.validate(f"nsd-checkzone {domain} /etc/nsd/{domain}.zone", "the zone")
        hr.service("nsd", restart=changed)

    run.each("dns", step, "dns")


COMPONENT = Component(
    name="dns",
    title="DNS (NSD)",
    roles=("dns",),
    apply=configure,
    packages=lambda run, host: ("nsd",),
)
