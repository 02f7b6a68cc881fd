"""The per-layer rank format (glmha_plugin.layers.ranks): longest prefix wins whatever the key order, one
number is every layer, rank and rank_ratio together, and one-line errors naming the key or the layer."""
import itertools

import pytest

from glmha_plugin.layers.ranks import layer_options, longest_match, lookup, matches, parse

# (path, channels, heads) of a small network's attention layers
LAYERS = [('enc.attn', 8, 1), ('mid.0.attn', 16, 2), ('mid.1.attn', 16, 2), ('mid.10.attn', 16, 2),
          ('dec.attn', 8, 1)]


def test_a_prefix_matches_whole_path_components():
    assert matches('', 'mid.1.attn') and matches('mid', 'mid.1.attn') and matches('mid.1', 'mid.1.attn')
    assert matches('mid.1.attn', 'mid.1.attn')
    assert not matches('mid.1', 'mid.10.attn') and not matches('mi', 'mid.1.attn')
    assert not matches('mid.1.attn.x', 'mid.1.attn') and not matches('attn', 'mid.1.attn')


@pytest.mark.parametrize('order', list(itertools.permutations(['', 'mid', 'mid.1', 'mid.1.attn'])))
def test_the_longest_prefix_wins_whatever_the_order_of_the_keys(order):
    values = {'': 1, 'mid': 2, 'mid.1': 3, 'mid.1.attn': 4}
    spec = {key: values[key] for key in order}
    assert longest_match(spec, 'mid.1.attn') == 'mid.1.attn'
    assert longest_match(spec, 'mid.10.attn') == 'mid'
    assert longest_match(spec, 'dec.attn') == ''
    spec.pop('mid.1.attn')
    assert lookup(spec, None, 'mid.1.attn') == {'rank': 3}
    assert lookup(None, spec, 'mid.0.attn') == {'rank_ratio': 2}


@pytest.mark.parametrize('reverse', [False, True])
def test_rank_and_rank_ratio_together_the_longer_match_applies(reverse):
    rank = {'mid': 8, 'mid.1': 4, 'dec': 2}
    ratio = {'': 0.5, 'mid.1.attn': 0.25}
    if reverse:
        rank, ratio = dict(reversed(rank.items())), dict(reversed(ratio.items()))
    got = layer_options(rank, ratio, LAYERS)
    assert got == {'enc.attn': {'rank_ratio': 0.5}, 'mid.0.attn': {'rank': 8}, 'mid.1.attn': {'rank_ratio': 0.25},
                   'mid.10.attn': {'rank': 8}, 'dec.attn': {'rank': 2}}


def test_a_number_is_every_layer():
    assert parse(8, 'rank') == {'': 8} and parse(None, 'rank') is None
    assert layer_options(8, None, LAYERS) == {path: {'rank': 8} for path, _, _ in LAYERS}
    assert layer_options(None, None, LAYERS) == {path: {} for path, _, _ in LAYERS}
    assert layer_options(None, {'mid': 0.25}, LAYERS)['enc.attn'] == {}      # the layer's default (ratio 0.5)
    assert layer_options(8, {'': 0.5}, []) == {}                              # every layer of none


def test_both_options_equally_long_is_an_error():
    with pytest.raises(ValueError, match=r"^net: mid\.0\.attn: both rank\['mid'\] \(8\) and rank_ratio\['mid'\] "
                                         r"\(0\.5\) apply; give one of them for this layer$"):
        layer_options({'mid': 8}, {'mid': 0.5}, LAYERS, owner='net: ')
    with pytest.raises(ValueError, match=r'both rank \(8\) and rank_ratio \(0\.5\) apply'):
        layer_options(8, {'': 0.5}, LAYERS)       # a number is the key ''


def test_a_prefix_matching_no_layer_is_named_with_the_closest_paths():
    with pytest.raises(ValueError) as err:
        layer_options({'mid.1': 4, 'midd': 4}, None, LAYERS, owner='Net: ')
    msg = str(err.value)
    assert msg.startswith("Net: rank: prefix(es) ['midd'] match no attention layer; attention layers: enc.attn, "
                          "mid.0.attn") and "did you mean 'mid'" in msg and '\n' not in msg
    with pytest.raises(ValueError, match=r"rank_ratio: prefix\(es\) \['mid.2'\] match no"):
        layer_options(None, {'mid.2': 0.5}, LAYERS)


def test_a_value_a_layer_cannot_take_names_the_layer_and_the_key():
    with pytest.raises(ValueError, match=r"^mid\.0\.attn \(16 channels, 2 heads\): rank 3 is not divisible by the 2 "
                                         r"heads .* \(set by rank\['mid'\]\)$"):
        layer_options({'mid': 3}, None, LAYERS)
    with pytest.raises(ValueError, match=r'^enc\.attn \(8 channels, 1 heads\): rank 9 is out of range'):
        layer_options(9, None, LAYERS)
    with pytest.raises(ValueError, match=r"dec\.attn .*rank_ratio must be a number in \(0, 1\].*set by "
                                         r"rank_ratio\['dec'\]"):
        layer_options(None, {'dec': 1.5}, LAYERS)


@pytest.mark.parametrize('value, message', [
    ([4, 8], r'^rank must be a whole number or \{module-path prefix: a whole number\}, got \[4, 8\]$'),
    ('8', r'rank must be a whole number or'),
    (True, r'rank must be a whole number or'),
    (8.0, r'rank must be a whole number or .*, got 8\.0$'),
    ({3: 8}, r"rank: keys are module-path prefixes \(strings"),
    ({'mid': '8'}, r"rank must be a whole number or .*, got '8' in \{'mid': '8'\}$"),
    ({'mid': 2.5}, r"rank must be a whole number or .*, got 2\.5 in \{'mid': 2\.5\}$"),
])
def test_malformed_options(value, message):
    with pytest.raises(ValueError, match=message):
        layer_options(value, None, LAYERS)


def test_a_ratio_is_any_number_in_range():
    assert layer_options(None, {'mid': 1, 'enc': 0.25}, LAYERS)['mid.0.attn'] == {'rank_ratio': 1}
    with pytest.raises(ValueError, match=r"^rank_ratio must be a number in \(0, 1\] or \{module-path prefix: a "
                                         r"number\}, got 'abc'$"):
        layer_options(None, 'abc', LAYERS)
