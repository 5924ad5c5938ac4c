"""EC2 corrections: where moto 5.2.1 differs from EC2 so that plinth's end-to-end checks of
networks could not be honest. Imported by fidelity.py; each correction says what EC2 does.
"""

from moto.core.responses import ActionResult
from moto.ec2.exceptions import DependencyViolationError, EC2ClientError
from moto.ec2.models.vpcs import VPCBackend
from moto.ec2.responses.route_tables import RouteTables


# --- 1. ClientToken makes CreateRouteTable, CreateNatGateway and CreateVpcEndpoint idempotent
# EC2 answers a create that repeats an earlier request's ClientToken with what that request
# made, instead of making another (the "Ensuring idempotency" page of the EC2 API
# reference), and refuses the token with other parameters (IdempotentParameterMismatch).
# moto ignores the token, so a create an SDK sends again after a lost answer made a second
# one there and never in AWS.
_tokens: dict = {}


class IdempotentParameterMismatch(EC2ClientError):
    def __init__(self, token):
        super().__init__("IdempotentParameterMismatch",
                         f"The client token {token} was used with different parameters.")


def _idempotent(response_class, action: str, result_key: str, store: str) -> None:
    create = getattr(response_class, action)

    def create_once(self):
        token = self._get_param("ClientToken")
        key = (self.current_account, self.region, action, token)
        # What the request asks for, the token aside: EC2 refuses a token reused for another.
        asked = sorted((k, tuple(v)) for k, v in self.querystring.items() if k != "ClientToken")
        known = _tokens.get(key) if token else None
        existing = getattr(self.ec2_backend, store)
        if known is not None and known[0] in existing:
            if known[1] != asked:
                raise IdempotentParameterMismatch(token)
            return ActionResult({result_key: existing[known[0]], "ClientToken": token})
        result = create(self)
        made = result.result.get(result_key) if isinstance(result.result, dict) else None
        if token and made is not None:
            _tokens[key] = (made.id, asked)
        return result

    setattr(response_class, action, create_once)


_idempotent(RouteTables, "create_route_table", "RouteTable", "route_tables")


# --- 2. DeleteVpc refuses while something is still in the VPC -------------------------------
# EC2 answers DependencyViolation to DeleteVpc while an internet gateway is attached to the
# VPC, a security group other than its default one is in it, or an endpoint not yet deleted
# (as for subnets, which moto does check). moto deletes the VPC and leaves the gateway
# attached, the groups and the endpoints behind.
_delete_vpc = VPCBackend.delete_vpc


def _delete_empty_vpc(self, vpc_id):
    attached = [igw.id for igw in self.internet_gateways.values()
                if igw.vpc is not None and igw.vpc.id == vpc_id]
    groups = [g.id for g in self.groups.get(vpc_id, {}).values() if g.name != "default"]
    endpoints = [e.id for e in self.vpc_end_points.values()
                 if e.vpc_id == vpc_id and e.state != "deleted"]
    if attached or groups or endpoints:
        raise DependencyViolationError(
            f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")
    return _delete_vpc(self, vpc_id)


VPCBackend.delete_vpc = _delete_empty_vpc


# --- 3. NAT gateways: tag filters, ClientToken, and what deleting one lets go of -----------
# EC2's DescribeNatGateways takes `tag:KEY` and `tag-key` filters like every Describe call;
# moto applies only its four own filters and answers every gateway for the rest, so a
# search by owner tags would find someone else's gateway. CreateNatGateway repeating an
# earlier request's ClientToken returns that request's gateway (see 1, applied here). Deleting a gateway
# in EC2 deletes its network interface and disassociates its Elastic IP, and EC2 refuses to
# release an address still associated (InvalidIPAddress.InUse); moto keeps the interface and
# the association, and releases an associated address by quietly disassociating it.
from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend  # noqa: E402
from moto.ec2.models.nat_gateways import NatGatewayBackend  # noqa: E402
from moto.ec2.responses.nat_gateways import NatGateways  # noqa: E402
from moto.ec2.utils import tag_filter_matches  # noqa: E402

_describe_nat_gateways = NatGatewayBackend.describe_nat_gateways


def _describe_nat_gateways_by_tags(self, filters, nat_gateway_ids):
    found = _describe_nat_gateways(self, filters, nat_gateway_ids)
    for name, values in (filters or {}).items():
        if name.startswith("tag:") or name in ("tag-key", "tag-value"):
            found = [g for g in found if tag_filter_matches(g, name, values)]
    return found


NatGatewayBackend.describe_nat_gateways = _describe_nat_gateways_by_tags

_idempotent(NatGateways, "create_nat_gateway", "NatGateway", "nat_gateways")

_delete_nat_gateway = NatGatewayBackend.delete_nat_gateway


def _delete_nat_gateway_and_let_go(self, nat_gateway_id):
    gateway = _delete_nat_gateway(self, nat_gateway_id)
    eni = getattr(gateway, "_eni", None)
    if eni is not None:
        for eip in list(self.addresses):
            if eip.eni is eni:
                self.disassociate_address(address=eip.public_ip)
        self.enis.pop(eni.id, None)
        gateway._eni = None
    return gateway


NatGatewayBackend.delete_nat_gateway = _delete_nat_gateway_and_let_go


class InvalidIPAddressInUse(EC2ClientError):
    def __init__(self, allocation_id):
        super().__init__("InvalidIPAddress.InUse",
                         f"Address {allocation_id} is in use.")


_release_address = ElasticAddressBackend.release_address


def _release_free_address(self, address=None, allocation_id=None):
    eips = self.address_by_ip([address]) if address else self.address_by_allocation([allocation_id])
    if eips and eips[0].eni is not None:
        raise InvalidIPAddressInUse(allocation_id or address)
    return _release_address(self, address=address, allocation_id=allocation_id)


ElasticAddressBackend.release_address = _release_free_address


# --- 4. CreateVpcEndpoint honours ClientToken (see 1) -------------------------------------
from moto.ec2.responses.vpcs import VPCs  # noqa: E402

_idempotent(VPCs, "create_vpc_endpoint", "VpcEndpoint", "vpc_end_points")


# --- 5. AssociateRouteTable of a subnet already associated is Resource.AlreadyAssociated --
# A subnet is explicitly associated with at most one route table; EC2 refuses a second
# association with Resource.AlreadyAssociated (moving it is ReplaceRouteTableAssociation).
# moto answers the existing association's id, as if the subnet were now in the new table.
from moto.ec2.models.route_tables import RouteBackend  # noqa: E402


class ResourceAlreadyAssociated(EC2ClientError):
    def __init__(self, subnet_id):
        super().__init__("Resource.AlreadyAssociated",
                         f"the specified association for route table conflicts with an "
                         f"existing association of {subnet_id}")


_associate_route_table = RouteBackend.associate_route_table


def _associate_once(self, route_table_id, gateway_id=None, subnet_id=None):
    if subnet_id is not None:
        for table in self.route_tables.values():
            if subnet_id in table._associations.values():
                raise ResourceAlreadyAssociated(subnet_id)
    return _associate_route_table(self, route_table_id, gateway_id=gateway_id,
                                  subnet_id=subnet_id)


RouteBackend.associate_route_table = _associate_once


# --- 6. ModifyVpcEndpoint adds and removes the service's routes ---------------------------
# EC2 puts a route to the service's prefix list in each route table a gateway endpoint is
# associated with, when the endpoint is created and when ModifyVpcEndpoint adds a table, and
# takes it out when a table is removed or the endpoint deleted. moto adds the routes only at
# creation, so deleting an endpoint that gained a table later fails on a route that is not
# there.
from moto.ec2.models.vpcs import VPCBackend as _VPCBackend  # noqa: E402

_modify_vpc_endpoint = _VPCBackend.modify_vpc_endpoint


def _modify_vpc_endpoint_routes(self, vpc_id, policy_doc, add_subnets, remove_subnets,
                                remove_route_tables, add_route_tables, add_security_groups,
                                remove_security_groups):
    endpoint = self.describe_vpc_endpoints(vpc_end_point_ids=[vpc_id])[0]
    prefix_list = endpoint.destination_prefix_list_id
    known = set(endpoint.route_table_ids or [])
    _modify_vpc_endpoint(self, vpc_id, policy_doc, add_subnets, remove_subnets,
                         remove_route_tables, add_route_tables, add_security_groups,
                         remove_security_groups)
    if prefix_list:
        for table in add_route_tables or []:
            if table not in known:
                self.create_route(table, None, gateway_id=endpoint.id,
                                  destination_prefix_list_id=prefix_list)
        for table in remove_route_tables or []:
            if table in known:
                self.delete_route(table, prefix_list)


_VPCBackend.modify_vpc_endpoint = _modify_vpc_endpoint_routes


# --- 7. DeleteVpcEndpoints of an endpoint already deleted changes nothing ------------------
# EC2 reports an endpoint that is already gone in the answer's Unsuccessful list; it never
# fails the call. moto deletes the deleted endpoint's routes again and fails the whole call
# with InvalidRoute.NotFound: a delete sent again after a lost answer could never succeed.
_delete_vpc_endpoints = _VPCBackend.delete_vpc_endpoints


def _delete_live_vpc_endpoints(self, vpce_ids=None):
    live = [i for i in vpce_ids or []
            if getattr(self.vpc_end_points.get(i), "state", "deleted") != "deleted"]
    return _delete_vpc_endpoints(self, live)


_VPCBackend.delete_vpc_endpoints = _delete_live_vpc_endpoints


# --- 8. RunInstances with a ClientToken launches once ---------------------------------------
# EC2 answers a RunInstances that repeats an earlier request's ClientToken with the
# reservation that request made (its instances as they are now, terminated ones too, for as
# long as EC2 keeps the token), and refuses the token with other parameters
# (IdempotentParameterMismatch). moto launches again: a launch the SDK sends again after a
# lost answer made a second instance there and never in AWS.
from moto.ec2.responses.instances import InstanceResponse  # noqa: E402

_run_instances = InstanceResponse.run_instances


def _run_instances_once(self):
    token = self._get_param("ClientToken")
    key = (self.current_account, self.region, "run_instances", token)
    asked = sorted((k, tuple(v)) for k, v in self.querystring.items() if k != "ClientToken")
    known = _tokens.get(key) if token else None
    if known is not None:
        if known[1] != asked:
            raise IdempotentParameterMismatch(token)
        for reservation in self.ec2_backend.all_reservations():
            if reservation.id == known[0]:
                return ActionResult(reservation)
    result = _run_instances(self)
    if token:
        _tokens[key] = (result.result.id, asked)
    return result


InstanceResponse.run_instances = _run_instances_once


# --- 9. TerminateInstances of an instance already terminated changes nothing ---------------
# EC2 answers it with the instance as it is (terminated), so a terminate the SDK sends again
# after a lost answer succeeds. moto deletes the instance's network interface a second time
# and fails with InvalidNetworkInterfaceID.NotFound.
from moto.ec2.models.instances import InstanceBackend  # noqa: E402

_terminate_instances = InstanceBackend.terminate_instances


def _terminate_live_instances(self, instance_ids):
    asked = [self.get_instance(i) for i in instance_ids]
    live = [i.id for i in asked if i._state.name != "terminated"]
    result = _terminate_instances(self, live) if live else []
    return list(result) + [(i, i._state) for i in asked if i.id not in live]


InstanceBackend.terminate_instances = _terminate_live_instances
