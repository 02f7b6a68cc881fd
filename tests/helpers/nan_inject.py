"""Run glmha-train with NaN training inputs from iteration ``$NAN_FROM_ITER`` on (test helper only).

Wraps ImageCleanModel.feed_data so that training batches of those iterations
are NaN; validation batches are left alone.
"""
import os
import sys

import glmha_plugin  # noqa: F401
from glmha_plugin.models import ImageCleanModel
from glmha_plugin.commands.train import main

_feed = ImageCleanModel.feed_data


def _feed_nan(self, data):
    if self.is_train and not self._validating and self.current_iter >= int(os.environ['NAN_FROM_ITER']):
        data = dict(data, lq=data['lq'] * float('nan'))
    return _feed(self, data)


if __name__ == '__main__':  # spawned DataLoader workers re-import this file
    ImageCleanModel.feed_data = _feed_nan
    main(sys.argv[1:])
