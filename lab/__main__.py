from lab.cli import main

# The guard matters: worker processes come from a forkserver, which imports the main
# module of the program that started it.
if __name__ == "__main__":
    raise SystemExit(main())
