import { Command, Argument } from '@commander-js/extra-typings';
import { completionScript, SHELLS, type CommandTree } from './completion.js';
import { imageJsonSchema } from '../image/config.js';
import { specJsonSchema } from '../installer/spec-fields.js';

const SCHEMAS = { spec: specJsonSchema, image: imageJsonSchema } as const;

const schema = () =>
  new Command('schema')
    .summary(
      'print the JSON Schema of a file vmstub reads: spec (vmstub.yaml, for create --config) or image (for image build)',
    )
    .description(
      "Print the JSON Schema of a file vmstub reads. For editors: save it (vmstub schema spec > vmstub.schema.json) and start vmstub.yaml with '# yaml-language-server: $schema=vmstub.schema.json'.",
    )
    .addArgument(new Argument('<FILE>', 'which file').choices(['spec', 'image'] as const))
    .action(async (file) => {
      process.stdout.write(JSON.stringify(SCHEMAS[file](), null, 2) + '\n');
    });

const completion = () =>
  new Command('completion')
    .summary('print a shell completion script: bash, zsh or fish')
    .description(
      "Print a completion script for commands, options, option values and instance names. bash: add 'source <(vmstub completion bash)' to ~/.bashrc; zsh: 'source <(vmstub completion zsh)' in ~/.zshrc; fish: vmstub completion fish > ~/.config/fish/completions/vmstub.fish.",
    )
    .addArgument(new Argument('<SHELL>', 'the shell').choices(SHELLS))
    .action(async (shell, _options, cmd) => {
      process.stdout.write(completionScript(shell, cmd.parent as unknown as CommandTree));
    });

export const toolCommands = () => [schema(), completion()];
