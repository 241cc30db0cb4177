"""
ML2 mechanism driver for the OpenStack bed: binds every port on every
segment, so ports become ACTIVE and Nova can boot on them without agents.
(The wheel's test drivers bind only for magic host names.)  Loaded by the
entry point `osbed_bindall` in neutron.ml2.mechanism_drivers, which the bed
declares in a .dist-info directory of its own on neutron's PYTHONPATH.
"""
from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class BindAllDriver(api.MechanismDriver):
    def initialize(self):
        pass

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                {portbindings.CAP_PORT_FILTER: True,
                                 portbindings.OVS_HYBRID_PLUG: False},
                                status=constants.PORT_STATUS_ACTIVE)
            return
