"""`accelerate` console script of the fake package: `launch` runs the script with sys.executable."""
import argparse
import os
import subprocess
import sys

FLAGS_WITH_VALUE = ("--dynamo_backend", "--dynamo_mode", "--mixed_precision", "--num_processes",
                    "--num_machines", "--num_cpu_threads_per_process", "--config_file",
                    "--main_process_ip", "--main_process_port", "--machine_rank", "--gpu_ids")


def main():
    parser = argparse.ArgumentParser(prog="accelerate")
    commands = parser.add_subparsers(dest="command", required=True)
    launch = commands.add_parser("launch")
    for flag in FLAGS_WITH_VALUE:
        launch.add_argument(flag)
    launch.add_argument("training_script")
    launch.add_argument("training_script_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.num_cpu_threads_per_process:
        os.environ["OMP_NUM_THREADS"] = args.num_cpu_threads_per_process
    if args.config_file and not os.path.isfile(args.config_file):
        parser.error(f"config file {args.config_file} not found")
    cmd = [sys.executable, args.training_script, *args.training_script_args]
    process = subprocess.Popen(cmd)
    try:
        process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
    if process.returncode != 0:
        raise subprocess.CalledProcessError(returncode=process.returncode, cmd=cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
