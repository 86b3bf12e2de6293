"""``python -m sparsexc.cli``: the command line, as the ``sparsexc`` console script (:func:`sparsexc.cli.console_main`);
a torchrun worker runs this module, and ends as :func:`sparsexc.cli.exit_process` says."""

from sparsexc.cli import exit_process, main

exit_process(main())
