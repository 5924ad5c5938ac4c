"""ElastiCache RBAC corrections: where moto 5.2.1 differs from what AWS ElastiCache does with
Redis OSS / Valkey users, user groups and the replication groups that use them, so that
plinth's end-to-end checks of `elasticache.user` and `elasticache.user_group` could not be
honest. Imported by fidelity.py; each correction says what moto does and what AWS does.

Statuses below move on the way a client sees AWS move them: a thing answered `creating`
(`modifying`, `deleting`) by its create (modify, delete) is reported so by as many Describe*
calls of its kind as each correction says, and keeps that status for every other call until
then; the next Describe* finds it `active` (`available`, or gone). A client that does not look
gets the same once PLINTH_EMULATOR_RBAC_SETTLE_SECONDS (default 2) have passed, as in AWS,
where the change completes whether anyone asks or not.

1. CreateUser: moto answers a new user `active` at once. AWS answers `creating`; the user is
   `active` shortly after. Here the CreateUser answer and the first DescribeUsers that
   reports the user say `creating`, later ones `active`. moto's own checks of the request
   stay; its UserAlreadyExists names the id asked for (moto always says "user1").
2. Authentication: moto accepts AuthenticationMode {Type, Passwords}, but reports Type
   `no-password-required` back as Authentication Type `no-password-required`. AWS reports
   Authentication {Type: password|no-password|iam, PasswordCount}: `no-password` for a user
   made with AuthenticationMode no-password-required, as for NoPasswordRequired.
3. Passwords and IAM users: moto only refuses passwords shorter than 16 characters. AWS takes
   one or two passwords (Passwords or AuthenticationMode.Passwords) of 16 to 128 printable
   ASCII characters, without spaces, `"`, `/` or `@`, and refuses others with
   InvalidParameterValue (400); an AuthenticationMode of Type iam needs UserId equal to
   UserName (InvalidParameterValue) and takes no passwords. The same rules hold for
   ModifyUser.
4. ModifyUser (UserId, AccessString, AppendAccessString, Passwords, NoPasswordRequired,
   AuthenticationMode, Engine): moto has none (HTTP 500 "not implemented"). AWS changes the
   user and answers it `modifying`; it is `active` again by the next DescribeUsers. An
   unknown user is UserNotFound (404), a user that is not `active` InvalidUserState (400),
   and AWS's built-in user `default` cannot be modified (InvalidParameterValue).
5. DeleteUser: moto marks the user `deleting` (only if it is `active`, and answers success
   otherwise), drops it on the next DescribeUsers that names its id but lists it as
   `deleting` forever in DescribeUsers without an id, and lets the built-in `default` user
   be deleted. AWS answers `deleting`, reports it so in one DescribeUsers, then it is gone
   (UserNotFound), its tags with it; a user that is not `active` is InvalidUserState (400);
   the built-in `default` user cannot be deleted (InvalidParameterValue); the user is taken
   out of every user group it is in, but a user named `default` that a group still has is
   refused with DefaultUserAssociatedToUserGroup (400), since every group needs one.
6. User groups (CreateUserGroup, DescribeUserGroups, ModifyUserGroup, DeleteUserGroup):
   moto 5.2.1 has none. AWS keeps UserGroupId, Status, Engine, UserIds, MinimumEngineVersion
   (6.0), PendingChanges (only while there are any), ReplicationGroups (the ids of the
   replication groups using it), ServerlessCaches (the names of the serverless caches using
   it, fidelity_elasticache_serverless.py) and ARN
   (arn:aws:elasticache:REGION:ACCOUNT:usergroup:ID), and the tags given at creation, which
   ListTagsForResource reads from that ARN. CreateUserGroup answers `creating`, the first
   DescribeUserGroups too, then `active`; a taken id is UserGroupAlreadyExists (400), an
   unknown (or deleting) user UserNotFound (404), two members with one user name
   DuplicateUserName (400), no member whose UserName is `default` DefaultUserRequired (400);
   each member's UserGroupIds lists the group. DescribeUserGroups, ModifyUserGroup and
   DeleteUserGroup of an unknown id are UserGroupNotFound (404). DescribeUserGroups answers
   every group in one page (no Marker).
7. ModifyUserGroup (UserIdsToAdd, UserIdsToRemove, Engine): AWS answers the group
   `modifying` with its current UserIds and PendingChanges {UserIdsToAdd, UserIdsToRemove};
   the next DescribeUserGroups says `modifying` too, then the group is `active` with the new
   members (and the members' UserGroupIds follow). A group that is not `active` is
   InvalidUserGroupState (400), an unknown user to add UserNotFound (404), removing a user
   that is not a member InvalidParameterValue (400) "User <id> is not a member of user group
   <group>", a change that would leave no member named `default` DefaultUserRequired (400),
   two members of one user name DuplicateUserName (400).
8. DeleteUserGroup: AWS answers `deleting`, reports it so in one DescribeUserGroups, then it
   is gone (UserGroupNotFound) and its members' UserGroupIds no longer list it. A group that
   is not `active`, or that a replication group or a serverless cache still uses (until it is
   gone), is refused with InvalidUserGroupState (400).
9. CreateReplicationGroup with UserGroupIds: moto keeps any ids. AWS refuses UserGroupIds
   with an AuthToken, or without TransitEncryptionEnabled true (InvalidParameterCombination,
   400), an unknown user group (UserGroupNotFound, 404) and one that is not `active`
   (InvalidUserGroupState, 400). The user group's ReplicationGroups lists the replication
   group until it is gone.
10. ModifyReplicationGroup: moto has none (HTTP 500 "not implemented"). Here only
   ReplicationGroupId, UserGroupIdsToAdd, UserGroupIdsToRemove and ApplyImmediately are
   implemented, as AWS does them: the answer's group is `modifying` with PendingModifiedValues
   UserGroups {UserGroupIdsToAdd, UserGroupIdsToRemove}, the next DescribeReplicationGroups
   `available` with the new UserGroupIds. An unknown replication group is
   ReplicationGroupNotFoundFault (404), one that is not `available` InvalidReplicationGroupState
   (400), an unknown user group to add UserGroupNotFound (404), one not `active`
   InvalidUserGroupState (400), adding one to a group without in-transit encryption
   InvalidParameterCombination (400), removing one it does not have InvalidParameterValue
   (400). Any other ModifyReplicationGroup parameter is answered InvalidParameterValue saying
   this emulator does not implement it: nothing is pretended to be applied. A replication
   group still `modifying` cannot be deleted (InvalidReplicationGroupState), as in AWS.
11. Error documents: for InvalidParameterValue and InvalidParameterCombination, moto adds a
   `<message>` element after `<Message>` (botocore's model gives those two shapes a
   `message` member). AWS's query-protocol error document has only Type, Code and Message.

The tag ARN pattern that lets ListTagsForResource read `usergroup` ARNs is fidelity.py's (3).
"""

import os
import re
import time

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.elasticache import models, responses
from moto.elasticache.exceptions import (
    InvalidParameterCombinationException,
    InvalidParameterValueException,
    UserNotFound,
)
from moto.elasticache.utils import VALID_ENGINE_TYPES
from moto.utilities.utils import get_partition

import fidelity as _base  # already (partly) imported: this module is imported by fidelity.py

SETTLE_SECONDS = float(os.environ.get("PLINTH_EMULATOR_RBAC_SETTLE_SECONDS", "2"))
BUILT_IN_USER = "default"


class UserAlreadyExists(ServiceException):
    code = "UserAlreadyExists"


class InvalidUserState(ServiceException):
    code = "InvalidUserState"


class UserGroupNotFound(ServiceException):
    code = "UserGroupNotFound"

    def __init__(self, group_id: str):
        super().__init__(f"User group {group_id} not found.")


class UserGroupAlreadyExists(ServiceException):
    code = "UserGroupAlreadyExists"


class InvalidUserGroupState(ServiceException):
    code = "InvalidUserGroupState"


class DefaultUserRequired(ServiceException):
    code = "DefaultUserRequired"


class DuplicateUserName(ServiceException):
    code = "DuplicateUserName"


class DefaultUserAssociatedToUserGroup(ServiceException):
    code = "DefaultUserAssociatedToUserGroup"


class InvalidReplicationGroupState(ServiceException):
    code = "InvalidReplicationGroupState"


# --- statuses that move on -----------------------------------------------------------------
# `item.plinth_pending`: the transitional status shown, how many more Describe* answers show
# it, when it ends anyway, and what it ends in.

def _begin(item, status: str, reports: int, then: str) -> None:
    item.status = status
    item.plinth_pending = {"status": status, "reports": reports,
                           "deadline": time.time() + SETTLE_SECONDS, "then": then}


def _reported(items) -> None:
    for item in items:
        pending = getattr(item, "plinth_pending", None)
        if pending:
            pending["reports"] -= 1


def _due(item, describing: bool) -> str | None:
    """What `item` becomes now: once the Describe* answers that show its transitional status
    are used up (a Describe* of its kind is being answered) or its time is up."""
    pending = getattr(item, "plinth_pending", None)
    if not pending:
        return None
    if item.status != pending["status"]:  # something else moved it on (a deleted group)
        item.plinth_pending = None
        return None
    if (describing and pending["reports"] <= 0) or time.time() >= pending["deadline"]:
        item.plinth_pending = None
        return pending["then"]
    return None


class UserGroup:
    def __init__(self, backend, group_id: str, engine: str, user_ids: list[str]):
        self.user_group_id = group_id
        self.engine = engine
        self.user_ids = list(user_ids)
        self.status = "creating"
        self.to_add: list[str] = []
        self.to_remove: list[str] = []
        self.plinth_pending = None
        self.arn = (f"arn:{get_partition(backend.region_name)}:elasticache:{backend.region_name}:"
                    f"{backend.account_id}:usergroup:{group_id}")


def _user_groups(backend) -> dict:
    if not hasattr(backend, "plinth_user_groups"):
        backend.plinth_user_groups = {}
    return backend.plinth_user_groups


def _settle(backend, describing: str = "") -> None:
    """Moves on every status whose time has come (and expires deleted clusters and groups);
    `describing` is the kind of thing a Describe* being answered reports."""
    _base._expire(backend)
    for user_id, user in list(backend.users.items()):
        then = _due(user, describing == "users")
        if then == "active":
            user.status = "active"
        elif then == "gone":
            del backend.users[user_id]
            backend.tagging_service.delete_all_tags_for_resource(user.arn)
    for group_id, group in list(_user_groups(backend).items()):
        then = _due(group, describing == "user groups")
        if then == "active":
            _apply_membership(backend, group)
            group.status = "active"
        elif then == "gone":
            del _user_groups(backend)[group_id]
            for user in backend.users.values():
                if group_id in user.user_group_ids:
                    user.user_group_ids.remove(group_id)
            backend.tagging_service.delete_all_tags_for_resource(group.arn)
    for group in backend.replication_groups.values():
        if _due(group, describing == "replication groups") == "available":
            add, remove = group.plinth_user_group_changes
            group.user_group_ids = [g for g in group.user_group_ids or [] if g not in remove]
            group.user_group_ids += [g for g in add if g not in group.user_group_ids]
            group.plinth_user_group_changes = ([], [])
            group.pending_modified_values = None
            group.status = "available"
    settle_serverless_caches(backend, describing)


# --- serverless caches ---------------------------------------------------------------------
# Serverless caches use user groups too; fidelity_elasticache_serverless.py, which keeps them,
# replaces these two with its own when it is imported.

def settle_serverless_caches(backend, describing: str) -> None:
    """Moves the serverless caches' statuses on (`describing` as for _settle)."""


def serverless_caches_using(backend, group_id: str) -> list[str]:
    """The names of the serverless caches that use the group, until they are gone."""
    return []


def _unique(values) -> list:
    return list(dict.fromkeys(values or []))


# --- 1-5. users ----------------------------------------------------------------------------

_PRINTABLE_PASSWORD = re.compile(r'^[\x21-\x7e]{16,128}$')


def _check_passwords(passwords: list[str]) -> None:
    if not passwords:
        return
    if len(passwords) > 2:
        raise InvalidParameterValueException(
            f"A user can have at most 2 passwords, {len(passwords)} were given.")
    for password in passwords:
        if not 16 <= len(password) <= 128:
            raise InvalidParameterValueException("Passwords length must be between 16-128 characters.")
        if not _PRINTABLE_PASSWORD.match(password) or any(c in password for c in '"/@'):
            raise InvalidParameterValueException(
                'Passwords must be printable ASCII characters other than space, ", / and @.')


def _check_iam(kind: str | None, user_id: str, user_name: str) -> None:
    if kind == "iam" and user_id != user_name:
        raise InvalidParameterValueException(
            "UserId and UserName must be the same for a user with IAM authentication.")


def _authentication(self):
    kind = self.authentication_type
    if self.no_password_required or kind == "no-password-required":
        kind = "no-password"
    return {"Type": kind, "PasswordCount": len(self.passwords) if self.passwords else None}


models.User.authentication = property(_authentication)


def _user(backend, user_id: str):
    user = backend.users.get(user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


_original_create_user = responses.ElastiCacheResponse.create_user


def _create_user(self):
    backend = self.elasticache_backend
    _settle(backend)
    params = self._get_params()
    user_id = params.get("UserId")
    if user_id in backend.users:
        raise UserAlreadyExists(f"User {user_id} already exists.")
    mode = params.get("AuthenticationMode") or {}
    _check_passwords(params.get("Passwords") or [])
    _check_passwords(mode.get("Passwords") or [])
    _check_iam(mode.get("Type"), user_id, params.get("UserName"))
    result = _original_create_user(self)
    _begin(backend.users[user_id], "creating", 1, "active")
    return result


def _describe_users(self):
    backend = self.elasticache_backend
    _settle(backend, "users")
    user_id = self._get_param("UserId")
    engine = (self._get_param("Engine") or "").lower()
    users = [_user(backend, user_id)] if user_id else list(backend.users.values())
    if engine:
        users = [u for u in users if u.engine == engine]
    _reported(users)
    return ActionResult({"Users": users})


def _new_authentication(user, params: dict, no_password_required: bool | None):
    """(type, passwords) a ModifyUser asks for, or None when it leaves them as they are."""
    passwords = params.get("Passwords") or []
    mode = params.get("AuthenticationMode")
    if mode:
        for key in mode:
            if key not in ("Type", "Passwords"):
                raise InvalidParameterValueException(
                    f'Unknown parameter in AuthenticationMode: "{key}", must be one of: Type, Passwords')
        kind = mode.get("Type")
        if mode.get("Passwords") and passwords:
            raise InvalidParameterCombinationException(
                "Passwords provided via multiple arguments. Use only one argument")
        passwords = passwords or mode.get("Passwords") or []
        if no_password_required and kind != "no-password-required":
            raise InvalidParameterCombinationException(
                f"No password required flag is true but provided authentication type is {kind}")
    elif no_password_required is not None or passwords:
        kind = "no-password-required" if no_password_required else "password"
    else:
        return None
    if kind not in ("password", "no-password-required", "iam"):
        raise InvalidParameterValueException(f"Input Authentication type: {kind} is not in the "
                                             "allowed list: [password,no-password-required,iam]")
    _check_passwords(passwords)
    if passwords and kind != "password":
        raise InvalidParameterCombinationException(
            f"Password field is not allowed with authentication type: {kind}")
    if kind == "password" and not passwords:
        raise InvalidParameterCombinationException(
            "A user with Authentication Mode: password, must have at least one password")
    _check_iam(kind, user.id, user.name)
    return kind, passwords


def _modify_user(self):
    backend = self.elasticache_backend
    _settle(backend)
    params = self._get_params()
    user = _user(backend, params.get("UserId"))
    if user.id == BUILT_IN_USER:
        raise InvalidParameterValueException("The default user cannot be modified.")
    if user.status != "active":
        raise InvalidUserState(f"User {user.id} is not in active state (it is {user.status}).")
    engine = params.get("Engine")
    if engine is not None and engine.lower() not in VALID_ENGINE_TYPES:
        raise InvalidParameterValueException(
            f'Unknown parameter for Engine: "{engine}", must be one of: {", ".join(VALID_ENGINE_TYPES)}')
    authentication = _new_authentication(user, params, self._get_bool_param("NoPasswordRequired"))
    if params.get("AccessString") is not None:
        user.access_string = params["AccessString"]
    if params.get("AppendAccessString"):
        user.access_string = f"{user.access_string} {params['AppendAccessString']}".strip()
    if engine is not None:
        user.engine = engine.lower()
    if authentication is not None:
        user.authentication_type, user.passwords = authentication[0], list(authentication[1])
        user.no_password_required = authentication[0] == "no-password-required"
    _begin(user, "modifying", 0, "active")
    return ActionResult(user)


def _delete_user(self):
    backend = self.elasticache_backend
    _settle(backend)
    user = _user(backend, self._get_param("UserId"))
    if user.id == BUILT_IN_USER:
        raise InvalidParameterValueException("The default user cannot be deleted.")
    if user.status != "active":
        raise InvalidUserState(f"User {user.id} is not in active state (it is {user.status}).")
    groups = [g for g in _user_groups(backend).values()
              if user.id in g.user_ids or user.id in g.to_add]
    if user.name == "default" and groups:
        raise DefaultUserAssociatedToUserGroup(
            f"User {user.id} is the default user of user group(s) "
            f"{', '.join(g.user_group_id for g in groups)}.")
    for group in groups:
        for members in (group.user_ids, group.to_add, group.to_remove):
            if user.id in members:
                members.remove(user.id)
    user.user_group_ids = []
    _begin(user, "deleting", 1, "gone")
    return ActionResult(user)


# --- 6-8. user groups ----------------------------------------------------------------------

def _group(backend, group_id: str) -> UserGroup:
    group = _user_groups(backend).get(group_id)
    if group is None:
        raise UserGroupNotFound(group_id)
    return group


def _member(backend, user_id: str):
    user = backend.users.get(user_id)
    if user is None or user.status == "deleting":
        raise UserNotFound(user_id)
    return user


def _check_members(members: list, group_id: str) -> None:
    names: dict[str, str] = {}
    for user in members:
        if user.name in names:
            raise DuplicateUserName(
                f"Users {names[user.name]} and {user.id} of user group {group_id} have the same "
                f"user name {user.name}.")
        names[user.name] = user.id
    if "default" not in names:
        raise DefaultUserRequired(
            f"User group {group_id} needs a user with the user name default.")


def _check_engine(engine: str | None) -> str:
    value = (engine or "").lower()
    if value not in VALID_ENGINE_TYPES:
        raise InvalidParameterValueException(
            f'Unknown parameter for Engine: "{engine}", must be one of: {", ".join(VALID_ENGINE_TYPES)}')
    return value


def _using(backend, group_id: str, pending: bool = False) -> list[str]:
    """The replication groups that use the group (with `pending`: or are about to)."""
    return [rg.replication_group_id for rg in backend.replication_groups.values()
            if group_id in (rg.user_group_ids or [])
            or (pending and group_id in getattr(rg, "plinth_user_group_changes", ([], []))[0])]


def _group_shape(backend, group: UserGroup) -> dict:
    shape = {
        "UserGroupId": group.user_group_id,
        "Status": group.status,
        "Engine": group.engine,
        "UserIds": list(group.user_ids),
        "MinimumEngineVersion": "6.0",
        "ReplicationGroups": _using(backend, group.user_group_id),
        "ServerlessCaches": serverless_caches_using(backend, group.user_group_id),
        "ARN": group.arn,
    }
    changes = {k: v for k, v in (("UserIdsToRemove", group.to_remove),
                                  ("UserIdsToAdd", group.to_add)) if v}
    if changes:
        shape["PendingChanges"] = changes
    return shape


def _apply_membership(backend, group: UserGroup) -> None:
    for user_id in group.to_remove:
        if user_id in group.user_ids:
            group.user_ids.remove(user_id)
        user = backend.users.get(user_id)
        if user is not None and group.user_group_id in user.user_group_ids:
            user.user_group_ids.remove(group.user_group_id)
    for user_id in group.to_add:
        user = backend.users.get(user_id)
        if user is None or user.status == "deleting":
            continue
        if user_id not in group.user_ids:
            group.user_ids.append(user_id)
        if group.user_group_id not in user.user_group_ids:
            user.user_group_ids.append(group.user_group_id)
    group.to_add, group.to_remove = [], []


def _create_user_group(self):
    backend = self.elasticache_backend
    _settle(backend)
    params = self._get_params()
    group_id = params.get("UserGroupId")
    if group_id in _user_groups(backend):
        raise UserGroupAlreadyExists(f"User group {group_id} already exists.")
    engine = _check_engine(params.get("Engine"))
    members = [_member(backend, user_id) for user_id in _unique(params.get("UserIds"))]
    _check_members(members, group_id)
    group = UserGroup(backend, group_id, engine, [u.id for u in members])
    _user_groups(backend)[group_id] = group
    _begin(group, "creating", 1, "active")
    for user in members:
        if group_id not in user.user_group_ids:
            user.user_group_ids.append(group_id)
    tags = params.get("Tags") or []
    if tags:
        backend.tagging_service.tag_resource(group.arn, tags)
    return ActionResult(_group_shape(backend, group))


def _describe_user_groups(self):
    backend = self.elasticache_backend
    _settle(backend, "user groups")
    group_id = self._get_param("UserGroupId")
    groups = [_group(backend, group_id)] if group_id else list(_user_groups(backend).values())
    shapes = [_group_shape(backend, g) for g in groups]
    _reported(groups)
    return ActionResult({"UserGroups": shapes})


def _modify_user_group(self):
    backend = self.elasticache_backend
    _settle(backend)
    params = self._get_params()
    group = _group(backend, params.get("UserGroupId"))
    if group.status != "active":
        raise InvalidUserGroupState(
            f"User group {group.user_group_id} is not in active state (it is {group.status}).")
    engine = _check_engine(params["Engine"]) if params.get("Engine") is not None else None
    add, remove = _unique(params.get("UserIdsToAdd")), _unique(params.get("UserIdsToRemove"))
    for user_id in add:
        _member(backend, user_id)
    for user_id in remove:
        if user_id not in group.user_ids:
            raise InvalidParameterValueException(
                f"User {user_id} is not a member of user group {group.user_group_id}")
    after = [u for u in group.user_ids if u not in remove]
    after += [u for u in add if u not in after]
    _check_members([backend.users[u] for u in after], group.user_group_id)
    group.to_add = [u for u in add if u not in group.user_ids]
    group.to_remove = remove
    if engine is not None:
        group.engine = engine
    _begin(group, "modifying", 1, "active")
    return ActionResult(_group_shape(backend, group))


def _delete_user_group(self):
    backend = self.elasticache_backend
    _settle(backend)
    group = _group(backend, self._get_param("UserGroupId"))
    if group.status != "active":
        raise InvalidUserGroupState(
            f"User group {group.user_group_id} is not in active state (it is {group.status}).")
    using = _using(backend, group.user_group_id, pending=True)
    if using:
        raise InvalidUserGroupState(
            f"User group {group.user_group_id} is associated with replication group(s) "
            f"{', '.join(using)}.")
    caches = serverless_caches_using(backend, group.user_group_id)
    if caches:
        raise InvalidUserGroupState(
            f"User group {group.user_group_id} is associated with serverless cache(s) "
            f"{', '.join(caches)}.")
    _begin(group, "deleting", 1, "gone")
    return ActionResult(_group_shape(backend, group))


# --- 9-10. replication groups ----------------------------------------------------------------

def _usable_group(backend, group_id: str) -> UserGroup:
    group = _group(backend, group_id)
    if group.status != "active":
        raise InvalidUserGroupState(
            f"User group {group_id} is not in active state (it is {group.status}).")
    return group


_original_create_replication_group = responses.ElastiCacheResponse.create_replication_group


def _create_replication_group(self):
    backend = self.elasticache_backend
    _settle(backend)
    group_ids = _unique(self._get_param("UserGroupIds"))
    if group_ids:
        if self._get_param("AuthToken"):
            raise InvalidParameterCombinationException(
                "AuthToken cannot be used together with UserGroupIds.")
        if self._get_bool_param("TransitEncryptionEnabled") is not True:
            raise InvalidParameterCombinationException(
                "UserGroupIds can only be used with TransitEncryptionEnabled set to true.")
        for group_id in group_ids:
            _usable_group(backend, group_id)
    return _original_create_replication_group(self)


_original_describe_replication_groups = responses.ElastiCacheResponse.describe_replication_groups


def _describe_replication_groups(self):
    _settle(self.elasticache_backend, "replication groups")
    return _original_describe_replication_groups(self)


_original_delete_replication_group = responses.ElastiCacheResponse.delete_replication_group


def _delete_replication_group(self):
    backend = self.elasticache_backend
    _settle(backend)
    group = backend.replication_groups.get(self._get_param("ReplicationGroupId"))
    if group is not None and group.status == "modifying":
        raise InvalidReplicationGroupState(
            f"Replication group {group.replication_group_id} is not in available state.")
    return _original_delete_replication_group(self)


_MODIFY_IMPLEMENTED = {"ReplicationGroupId", "UserGroupIdsToAdd", "UserGroupIdsToRemove",
                       "ApplyImmediately"}


def _modify_replication_group(self):
    backend = self.elasticache_backend
    _settle(backend)
    params = self._get_params()
    other = sorted(set(params) - _MODIFY_IMPLEMENTED)
    if other:
        raise InvalidParameterValueException(
            f"ModifyReplicationGroup {', '.join(other)}: not implemented by plinth's emulator "
            "patch (fidelity_elasticache_users.py handles only UserGroupIdsToAdd, "
            "UserGroupIdsToRemove and ApplyImmediately); nothing was changed.")
    group_id = params.get("ReplicationGroupId")
    group = backend.replication_groups.get(group_id)
    if group is None:
        raise models.ReplicationGroupNotFound(group_id)
    if group.status != "available":
        raise InvalidReplicationGroupState(
            f"Replication group {group_id} is not in available state (it is {group.status}).")
    current = group.user_group_ids or []
    add = [g for g in _unique(params.get("UserGroupIdsToAdd")) if g not in current]
    remove = _unique(params.get("UserGroupIdsToRemove"))
    for user_group_id in _unique(params.get("UserGroupIdsToAdd")):
        _usable_group(backend, user_group_id)
    if add and not group.transit_encryption_enabled:
        raise InvalidParameterCombinationException(
            f"Replication group {group_id} does not have in-transit encryption enabled, "
            "which user groups need.")
    for user_group_id in remove:
        if user_group_id not in current:
            _group(backend, user_group_id)
            raise InvalidParameterValueException(
                f"User group {user_group_id} is not associated with replication group {group_id}.")
    if not add and not remove:
        return ActionResult({"ReplicationGroup": group})
    group.plinth_user_group_changes = (add, remove)
    group.pending_modified_values = {"UserGroups": {
        k: v for k, v in (("UserGroupIdsToAdd", add), ("UserGroupIdsToRemove", remove)) if v}}
    _begin(group, "modifying", 0, "available")
    return ActionResult({"ReplicationGroup": group})


for _name, _fn in {
    "create_user": _create_user,
    "describe_users": _describe_users,
    "modify_user": _modify_user,
    "delete_user": _delete_user,
    "create_user_group": _create_user_group,
    "describe_user_groups": _describe_user_groups,
    "modify_user_group": _modify_user_group,
    "delete_user_group": _delete_user_group,
    "create_replication_group": _create_replication_group,
    "describe_replication_groups": _describe_replication_groups,
    "delete_replication_group": _delete_replication_group,
    "modify_replication_group": _modify_replication_group,
}.items():
    setattr(responses.ElastiCacheResponse, _name, _fn)


# --- 11. error documents -------------------------------------------------------------------

_original_serialized = responses.ElastiCacheResponse.serialized


def _serialized(self, action_result):
    status, headers, body = _original_serialized(self, action_result)
    if isinstance(getattr(action_result, "result", None), Exception) and isinstance(body, str):
        body = re.sub(r"(</Message>)<message>[^<]*</message>", r"\1", body)
    return status, headers, body


responses.ElastiCacheResponse.serialized = _serialized
