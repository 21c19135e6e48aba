/* commands.h - subcommands implemented outside main.c. Each takes the arguments after its
 * name and returns the process exit code (0 ok, 1 failure/regression, 2 usage or input error).
 * Each prints its own --help. */
#ifndef HB_COMMANDS_H
#define HB_COMMANDS_H

int hb_cmd_power(int argc, char **argv);    /* harness/cmd_power.c */
int hb_cmd_verify(int argc, char **argv);   /* harness/cmd_verify.c */
int hb_cmd_weights(int argc, char **argv);  /* harness/cmd_weights.c */
int hb_cmd_report(int argc, char **argv);   /* results/cmd_report.c */
int hb_cmd_check(int argc, char **argv);    /* results/cmd_report.c */
int hb_cmd_compare(int argc, char **argv);  /* results/cmd_report.c */

#endif
