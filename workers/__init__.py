"""Workers of wsad-hpo; decide nothing about what a good hyperparameter is. Modules:

* ``worker`` -- ``run_worker``: pull trials from several studies until each has its target;
* ``signals`` -- graceful stop on SIGTERM / SIGINT / SIGUSR1;
* ``local`` -- a pool of local worker processes with a progress line;
* ``slurm`` -- sbatch scripts, submission, job states, the SLURM time rule;
* ``proc`` -- the one function that runs a subprocess (an argv list, never a shell).
"""
