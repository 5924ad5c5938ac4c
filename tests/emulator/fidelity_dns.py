"""DNS corrections: where moto 5.2.1 differs from Route 53 and ACM so that plinth's
end-to-end checks of certificates validated in a hosted zone could not be honest. Imported
by fidelity.py; each correction says what AWS does.
"""

from moto.acm.models import CertBundle
from moto.route53.exceptions import Route53ClientError
from moto.route53.models import Route53Backend, route53_backends

# What moto writes into every DNS-validated certificate's validation record.
_RECORD_PREFIX = "_d930b28be6c5927595552b219965053e."
_RECORD_VALUE = "_c9edd76ee4a0e2a74388032f3861cc50.ykybfrwcxw.acm-validations.aws."


# --- 1. ACM issues a DNS-validated certificate only once its validation records resolve --
# ACM checks each domain's CNAME record (the DomainValidationOptions' ResourceRecord) and
# issues the certificate once every one of them is in DNS; until then it stays
# PENDING_VALIDATION (72 hours, then VALIDATION_TIMED_OUT). moto issues every certificate
# after MOTO_ACM_VALIDATION_WAIT seconds whatever DNS holds. Here a domain that a hosted zone
# of the account covers waits for its record in that zone; a domain no zone covers keeps
# moto's timer (it stands for a person who created the record at their own DNS provider).
def _zones_covering(account: str, domain: str) -> list:
    backend = route53_backends[account]["aws"]
    return [z for z in backend.zones.values()
            if not z.private_zone and (domain == z.name.rstrip(".")
                                       or domain.endswith("." + z.name.rstrip(".")))]


def _validated_in(zone, domain: str) -> bool:
    name = _RECORD_PREFIX + (domain[2:] if domain.startswith("*.") else domain) + "."
    return any(r.name.rstrip(".") == name.rstrip(".") and r.type == "CNAME"
               and _RECORD_VALUE.rstrip(".") in [v.rstrip(".") for v in (r.records or [])]
               for r in zone.rrsets)


def _domains(bundle) -> set:
    described = bundle.describe()["Certificate"]
    return set(described.get("SubjectAlternativeNames", []) + [bundle.common_name])


_check = CertBundle.check


def _check_records(self):
    if self.type == "AMAZON_ISSUED" and self.status == "PENDING_VALIDATION":
        account = self.arn.split(":")[4]
        for domain in _domains(self):
            zones = _zones_covering(account, domain)
            if zones and not any(_validated_in(z, domain) for z in zones):
                return
    _check(self)


CertBundle.check = _check_records


# --- 2. CreateHostedZone's CallerReference makes it idempotent ---------------------------
# Route 53 refuses a CreateHostedZone whose CallerReference an earlier request already used
# (HostedZoneAlreadyExists), so a create the SDK sends again after a lost answer never makes
# a second zone. moto ignores the reference.
class HostedZoneAlreadyExists(Route53ClientError):
    def __init__(self, name):
        super().__init__("HostedZoneAlreadyExists",
                         f"A hosted zone has already been created with the specified caller "
                         f"reference (zone {name}).")


_create_hosted_zone = Route53Backend.create_hosted_zone


def _create_zone_once(self, name, private_zone, caller_reference=None, *args, **kwargs):
    if caller_reference and any(z.caller_reference == caller_reference
                                for z in self.zones.values()):
        raise HostedZoneAlreadyExists(name)
    return _create_hosted_zone(self, name, private_zone, caller_reference, *args, **kwargs)


Route53Backend.create_hosted_zone = _create_zone_once
