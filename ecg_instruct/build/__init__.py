"""The build: the ordered stages (`pipeline`), the interface they share (`stage`), the work
folder's housekeeping (`workdir`), and what a build is given (`options`, `recipe`), checked
against (`validate`), runs its parallel work on (`executor`) and accounts for (`accounting`)."""
