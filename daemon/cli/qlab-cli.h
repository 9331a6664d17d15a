/* qlab-cli.h — the subcommands of the `qlab` client. Each returns the process exit status
 * and prints its own one-line error to stderr ("qlab: ..."). */
#pragma once

int qlab_cmd_quant(int argc, char **argv);     /* cmd-quant.c */
int qlab_cmd_plot(int argc, char **argv);      /* cmd-plot.c */
