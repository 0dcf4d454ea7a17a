"""Exceptions.  Names follow NEST's (BadProperty, UnknownModel, ...) so ported scripts read the same;
all derive from :class:`EpropError` (alias ``NESTError``)."""


class EpropError(Exception):
    """Base class of every error eprop-dist raises on bad input or an impossible state."""


NESTError = EpropError


class BadProperty(EpropError, ValueError):
    """A parameter value is invalid (message names the model and the field)."""


class UnknownModel(EpropError, ValueError):
    """A node or synapse model name is not known."""


class UnknownParameter(EpropError, KeyError):
    """A parameter name is not known for the model."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class IllegalConnection(EpropError, ValueError):
    """A connection is not allowed (model pair, receptor, delay, shape)."""


class KernelException(EpropError, RuntimeError):
    """The simulation reached an impossible state (e.g. a needed e-prop history entry is missing)."""


class NotImplementedFeature(EpropError, NotImplementedError):
    """A NEST feature eprop-dist does not implement (the message says what to use instead)."""


class NESTErrors:
    """NEST's exception names (``nest.NESTErrors.BadProperty`` ...), as the same classes as ours, so
    ``pytest.raises(nest.NESTErrors.BadProperty)`` and ``except nest.NESTErrors.X`` port unchanged."""
    NESTError = EpropError
    KernelException = KernelException
    BadProperty = BadProperty
    BadParameter = BadProperty
    BadParameterValue = BadProperty
    BadDelay = BadProperty
    StepMultipleRequired = BadProperty
    TimeMultipleRequired = BadProperty
    InvalidTimeInModel = BadProperty
    UnknownModelName = UnknownModel
    UnknownSynapseType = UnknownModel
    UnknownNode = BadProperty
    UnknownParameter = UnknownParameter
    UnaccessedDictionaryEntry = UnknownParameter
    IllegalConnection = IllegalConnection
    UnknownReceptorType = IllegalConnection
    IncompatibleReceptorType = IllegalConnection
    DimensionMismatch = IllegalConnection
    NotImplemented = NotImplementedFeature
