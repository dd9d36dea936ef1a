package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

const completionHelp = `usage: circusctl completion bash|zsh

Prints a script completing circusctl's commands, their flags, signal and
option names, and watcher names, which it asks the arbiter for (circusctl
list, with the --endpoint of the line being completed).

  bash:  source <(circusctl completion bash)
         or save it as /usr/share/bash-completion/completions/circusctl
  zsh:   source <(circusctl completion zsh)
         or save it as _circusctl in a directory of $fpath
`

// optionKeys are what get accepts (the keys options prints), setKeys what
// set accepts, globalKeys what globaloptions accepts: §2.4 and §2.5.
var (
	optionKeys = []string{
		"numprocesses", "warmup_delay", "working_dir", "uid", "gid", "send_hup", "stop_signal",
		"stop_children", "shell", "shell_args", "env", "max_retry", "cmd", "args", "respawn",
		"graceful_timeout", "executable", "use_sockets", "priority", "copy_env", "singleton",
		"on_demand", "stdout_stream_conf", "stderr_stream_conf", "max_age", "max_age_variance",
		"close_child_stdin", "close_child_stdout", "close_child_stderr",
	}
	setKeys = []string{
		"numprocesses", "max_retry", "max_age", "max_age_variance", "stop_signal", "warmup_delay",
		"graceful_timeout", "retry_in", "uid", "gid", "send_hup", "shell", "copy_env", "respawn",
		"stop_children", "close_child_stdin", "close_child_stdout", "close_child_stderr", "env",
		"cmd", "args", "working_dir", "singleton", "hooks",
	}
	globalKeys = []string{"endpoint", "stats_endpoint", "pubsub_endpoint", "check_delay", "multicast_endpoint"}
)

// completionCommand is "completion bash|zsh".
func completionCommand(e environ, args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(e.stdout, completionHelp)
		return exitOK
	}
	if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh") {
		fmt.Fprintf(e.stderr, "circusctl completion: want bash or zsh\n%s", completionHelp)
		return exitUsage
	}
	if args[0] == "bash" {
		io.WriteString(e.stdout, bashCompletion())
	} else {
		io.WriteString(e.stdout, zshCompletion())
	}
	return exitOK
}

func commandNames() []string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	for _, c := range extraCommands {
		names = append(names, c[0])
	}
	return names
}

// kindWords names argKinds in the bash script.
var kindWords = map[argKind]string{
	argOther: "other", argWatcher: "watcher", argSignal: "signal", argOptKey: "optkey",
	argSetPair: "setpair", argGlobal: "global", argCommand: "command", argShell: "shell",
	argExecutable: "executable",
}

// bashCompletion is generated from the command table, so that it follows
// it. It splits COMP_LINE itself on blanks only, because bash's own words
// break at ':' and '=', which endpoints are full of.
func bashCompletion() string {
	var valueFlags []string
	var cases strings.Builder
	for _, c := range commands {
		var flags, kinds []string
		for _, f := range c.flags {
			flags = append(flags, "--"+f.name)
			if f.value != "" && !slices.Contains(valueFlags, "--"+f.name) {
				valueFlags = append(valueFlags, "--"+f.name)
			}
		}
		for _, k := range c.comp {
			kinds = append(kinds, kindWords[k])
		}
		repeat := ""
		if c.compRepeat {
			repeat = "1"
		}
		fmt.Fprintf(&cases, "        %s) flags=%q kinds=%q repeat=%q ;;\n",
			c.name, strings.Join(flags, " "), strings.Join(kinds, " "), repeat)
	}
	cases.WriteString("        help) kinds=\"command\" ;;\n        completion) kinds=\"shell\" ;;\n")
	var globalFlags []string
	for _, o := range globalHelp {
		globalFlags = append(globalFlags, strings.Fields(o[0])[0])
	}
	r := strings.NewReplacer(
		"@GLOBALFLAGS@", strings.Join(globalFlags, " "),
		"@COMMANDS@", strings.Join(commandNames(), " "),
		"@VALUEFLAGS@", strings.Join(valueFlags, "|"),
		"@CASES@", strings.TrimSuffix(cases.String(), "\n"),
		"@SIGNALS@", strings.Join(stopSignals, " "),
		"@OPTKEYS@", strings.Join(optionKeys, " "),
		"@SETKEYS@", strings.Join(setKeys, " "),
		"@GLOBALKEYS@", strings.Join(globalKeys, " "),
	)
	return r.Replace(bashTemplate)
}

const bashTemplate = `# bash completion for circusctl. Load it in the current shell with
#     source <(circusctl completion bash)
# or save it as /usr/share/bash-completion/completions/circusctl.

# _circusctl_watchers PROGRAM [GLOBAL OPTIONS] prints the watchers, one a
# line, of the arbiter the line being completed points at; nothing when
# none answers within a second.
_circusctl_watchers() {
    local out
    out=$("$@" --timeout 1 list 2>/dev/null) || return 0
    printf '%s\n' "${out//,/$'\n'}"
}

_circusctl() {
    COMPREPLY=()
    local line=${COMP_LINE:0:COMP_POINT}
    local -a words
    read -ra words <<< "$line"
    [[ -z $line || $line == *[[:space:]] ]] && words+=("")
    local cword=$(( ${#words[@]} - 1 ))
    local cur=${words[cword]} prev=
    (( cword > 0 )) && prev=${words[cword-1]}

    # Global options come before the command; only --endpoint matters to
    # the watcher list.
    local -a globals=()
    local i=1 cmd=
    while (( i < cword )); do
        case ${words[i]} in
            --endpoint|--timeout|--ssh|--ssh_keyfile)
                [[ ${words[i]} == --endpoint ]] && globals+=(--endpoint "${words[i+1]}")
                (( i += 2 )); continue ;;
            --endpoint=*) globals+=("${words[i]}") ;;
            -*) ;;
            *) cmd=${words[i]}; break ;;
        esac
        (( i++ ))
    done

    if [[ -z $cmd ]]; then
        case $prev in
            --endpoint|--timeout|--ssh|--ssh_keyfile) ;;
            *)
                if [[ $cur == -* ]]; then
                    COMPREPLY=($(compgen -W "@GLOBALFLAGS@" -- "$cur"))
                else
                    COMPREPLY=($(compgen -W "@COMMANDS@" -- "$cur"))
                fi ;;
        esac
    else
        # n is the number of positionals before the current word.
        local n=0 j
        for (( j = i + 1; j < cword; j++ )); do
            case ${words[j]} in
                @VALUEFLAGS@) (( j++ )) ;;
                -*) ;;
                *) (( n++ )) ;;
            esac
        done
        local flags= kinds= repeat= kind=
        case $cmd in
@CASES@
        esac
        case $prev in
            --match) COMPREPLY=($(compgen -W "simple glob regex" -- "$cur")) ;;
            --signum) COMPREPLY=($(compgen -W "@SIGNALS@" -- "$cur")) ;;
            @VALUEFLAGS@) ;;
            *)
                if [[ $cur == -* ]]; then
                    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
                else
                    local -a k=($kinds)
                    if (( n < ${#k[@]} )); then
                        kind=${k[n]}
                    elif [[ -n $repeat && ${#k[@]} -gt 0 ]]; then
                        kind=${k[${#k[@]}-1]}
                    fi
                fi ;;
        esac
        case $kind in
            watcher)
                local IFS=$'\n'
                COMPREPLY=($(compgen -W "$(_circusctl_watchers "${words[0]}" "${globals[@]}")" -- "$cur")) ;;
            signal) COMPREPLY=($(compgen -W "@SIGNALS@" -- "$cur")) ;;
            optkey) COMPREPLY=($(compgen -W "@OPTKEYS@" -- "$cur")) ;;
            setpair) (( (n - 1) % 2 == 0 )) && COMPREPLY=($(compgen -W "@SETKEYS@" -- "$cur")) ;;
            global) COMPREPLY=($(compgen -W "@GLOBALKEYS@" -- "$cur")) ;;
            command) COMPREPLY=($(compgen -W "@COMMANDS@" -- "$cur")) ;;
            shell) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
            executable) COMPREPLY=($(compgen -c -- "$cur")) ;;
        esac
    fi

    # bash replaces only what follows the last ':' of the word.
    if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
        local colon=${cur%"${cur##*:}"} k
        for k in "${!COMPREPLY[@]}"; do
            COMPREPLY[k]=${COMPREPLY[k]#"$colon"}
        done
    fi
    return 0
}

complete -F _circusctl circusctl
`

// zshQuote escapes s for a single-quoted _arguments spec's [description].
func zshQuote(s string) string {
	s = strings.NewReplacer("[", `\[`, "]", `\]`, ":", `\:`).Replace(s)
	return strings.ReplaceAll(s, "'", `'\''`)
}

// zshAction is the _arguments action completing an argKind.
func zshAction(k argKind) string {
	words := func(w []string) string { return "(" + strings.Join(w, " ") + ")" }
	switch k {
	case argWatcher:
		return "watcher:_circusctl_watchers"
	case argSignal:
		return "signal:" + words(stopSignals)
	case argOptKey:
		return "option:" + words(optionKeys)
	case argSetPair:
		return "option or value:" + words(setKeys)
	case argGlobal:
		return "option:" + words(globalKeys)
	case argCommand:
		return "command:" + words(commandNames())
	case argShell:
		return "shell:(bash zsh)"
	case argExecutable:
		return "command:_command_names -e"
	}
	return "argument: "
}

// zshCompletion is generated from the command table, as bashCompletion is.
func zshCompletion() string {
	var b strings.Builder
	b.WriteString(zshHeader)
	b.WriteString("  local -a cmds=(\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "    '%s:%s'\n", c.name, zshQuote(c.short))
	}
	for _, c := range extraCommands {
		fmt.Fprintf(&b, "    '%s:%s'\n", c[0], zshQuote(c[1]))
	}
	b.WriteString("  )\n")
	b.WriteString(zshMiddle)
	for _, c := range commands {
		var specs []string
		for _, f := range c.flags {
			switch {
			case f.value == "":
				specs = append(specs, fmt.Sprintf("'--%s[%s]'", f.name, zshQuote(f.help)))
			case len(f.choices) > 0:
				specs = append(specs, fmt.Sprintf("'--%s=[%s]:%s:(%s)'", f.name, zshQuote(f.help), strings.ToLower(f.value), strings.Join(f.choices, " ")))
			case f.name == "signum":
				specs = append(specs, fmt.Sprintf("'--%s=[%s]:%s'", f.name, zshQuote(f.help), zshAction(argSignal)))
			default:
				specs = append(specs, fmt.Sprintf("'--%s=[%s]:%s:'", f.name, zshQuote(f.help), strings.ToLower(f.value)))
			}
		}
		for i, k := range c.comp {
			if c.compRepeat && i == len(c.comp)-1 {
				specs = append(specs, fmt.Sprintf("'*:%s'", zshAction(k)))
			} else {
				specs = append(specs, fmt.Sprintf("'%d:%s'", i+1, zshAction(k)))
			}
		}
		if len(specs) == 0 {
			fmt.Fprintf(&b, "        %s) ret=0 ;;\n", c.name)
			continue
		}
		fmt.Fprintf(&b, "        %s) _arguments %s && ret=0 ;;\n", c.name, strings.Join(specs, " "))
	}
	fmt.Fprintf(&b, "        help) _arguments '1:%s' && ret=0 ;;\n", zshAction(argCommand))
	fmt.Fprintf(&b, "        completion) _arguments '1:%s' && ret=0 ;;\n", zshAction(argShell))
	b.WriteString(zshFooter)
	return b.String()
}

const zshHeader = `#compdef circusctl
# zsh completion for circusctl. Load it in the current shell with
#     source <(circusctl completion zsh)
# or save it as _circusctl in a directory of $fpath, before compinit runs.

# _circusctl_watchers offers the watchers of the arbiter the line being
# completed points at (its --endpoint), asking it for at most a second.
_circusctl_watchers() {
  local -a names
  names=(${(s:,:)"$(_call_program watchers $_circusctl_prog $_circusctl_endpoint --timeout 1 list 2>/dev/null)"})
  _wanted watchers expl watcher compadd -a names
}

_circusctl() {
  local curcontext=$curcontext state line ret=1
  typeset -A opt_args
  local _circusctl_prog=$words[1]
`

const zshMiddle = `  _arguments -C \
    '--endpoint=[the control endpoint]:endpoint:' \
    '--timeout=[seconds to wait for the arbiter]:seconds:' \
    '--json[print the reply as JSON]' \
    '--prettify[with --json, indent it]' \
    '(- *)--version[print the version]' \
    '(- *)--help[print the help]' \
    '1:command:->command' \
    '*::argument:->argument' && ret=0
  local -a _circusctl_endpoint
  [[ -n ${opt_args[--endpoint]} ]] && _circusctl_endpoint=(--endpoint ${opt_args[--endpoint]})
  case $state in
    command)
      _describe -t commands 'circusctl command' cmds && ret=0 ;;
    argument)
      curcontext=${curcontext%:*:*}:circusctl-$words[1]:
      case $words[1] in
`

const zshFooter = `      esac ;;
  esac
  return ret
}

# Autoloaded from $fpath, this file is _circusctl's body; sourced, it
# registers the function.
if [[ $funcstack[1] == _circusctl ]]; then
  _circusctl "$@"
else
  compdef _circusctl circusctl
fi
`
