"""IAM corrections: where moto 5.2.1 differs from IAM so that plinth's end-to-end checks of
instance profiles could not be honest. Imported by fidelity.py.
"""

from moto.iam.exceptions import NotFoundException
from moto.iam.models import IAMBackend


# --- 1. RemoveRoleFromInstanceProfile of a role the profile does not hold is NoSuchEntity --
# IAM answers NoSuchEntity (404) when the role is not in the profile, e.g. a remove the SDK
# sends again after a lost answer. moto fails with HTTP 500 (a Python ValueError).
_remove_role = IAMBackend.remove_role_from_instance_profile


def _remove_held_role(self, profile_name, role_name):
    profile = self.get_instance_profile(profile_name)
    if not any(r.name == role_name for r in profile.roles):
        raise NotFoundException(
            f"The role {role_name} is not in the instance profile {profile_name}.")
    return _remove_role(self, profile_name, role_name)


IAMBackend.remove_role_from_instance_profile = _remove_held_role
