"""Every option block the plugin reads or checks, declared once: typed, with its default and one line each.

An option block is a standard-library dataclass; each field is one key::

    total_iter: Annotated[int, '>= 1', 'required to train', 'training length in iterations'] = None

The annotation holds the type and, as strings, the rules and the description:

* ``'>= N'``, ``'> N'``, ``'<= N'``, ``'< N'``: bounds of the numbers (of each number, for a list);
* ``'required'`` / ``'required to train'``: the key must be present (in a present block);
* ``'not empty'``: text that may not be ``''``;
* ``'also: a, b'``: other names of the key (other projects'; a file that uses one is told this key's name);
* any other string: the one-line description.

The default is the dataclass default; ``None`` with a type that does not allow ``None`` means "no default"
(the key is set where it is used).  Types: ``bool``, ``int`` (whole numbers; ``5000.0`` counts, as Restormer's
files write ``!!float 5e3``), ``float`` (any number), ``str``, ``Literal[...]``, ``Optional``/``Union``,
``List``/``Sequence``/``Tuple`` and ``Dict``; a field whose type is another dataclass is a nested block.

A dataclass may set ``unknown_keys`` (a ``ClassVar``) for keys it does not declare: ``'refuse'`` (the default:
a closed block, the plugin owns every key), ``'hint'`` (basicsr's blocks, whose forks read more: a key close
to a declared one is refused as a likely misspelling, others pass) or ``'pass'`` (blocks handed to the class
their ``type`` names, which checks its own keys).  A block assembled from several dataclasses takes the most
permissive setting of its parts.

Who declares what (each key once):

* :mod:`.basicsr_blocks`: basicsr 1.4.2's blocks (top level, ``train``, ``val``, ``logger``, ``path``, the
  dataset loader keys, basicsr's ``PairedImageDataset``, optimizer, scheduler, losses, metrics);
* the plugin's models, in ``declared_options`` (``{block path: dataclass}``): the GPU-training options
  (:mod:`glmha_plugin.models.training`), Restormer's recipe keys (:mod:`~glmha_plugin.models.image_restoration_model`,
  :mod:`~glmha_plugin.models.mixing_augment`, :mod:`~glmha_plugin.models.progressive`);
* the plugin's datasets, in ``declared_options`` (``{'': dataclass}``, relative to their own block);
* ``network_g``: the constructor signature of the architecture ``type`` names (types and defaults from the
  signature, descriptions from its docstring; :mod:`.network`); nothing is re-declared.

The modules: :mod:`.values` reads a declaration and checks a value against it; :mod:`.blocks` finds the
declared blocks of an option dict and checks them (``check_declared``; the pre-flight check,
:mod:`glmha_plugin.glue.preflight`, runs its steps); :mod:`.network` reads the architectures;
:mod:`.reference` writes the reference of every option that ``docs/options.md`` carries (``glmha options
reference``) and the table of the GPU-training options in ``docs/gpu_training.md``.
"""
