/**
 * libvirt through `virsh` (argv arrays, never a shell; one connection URI per client), keeping to
 * vmstub's own domains: before it starts, stops, redefines or removes a domain it reads the domain's
 * XML and goes on only if the domain carries vmstub's metadata (VMSTUB_XMLNS). A domain of anyone
 * else's is refused in one line and left as it was.
 */
import { VmstubError } from '../util/errors.js';
import { run, which } from '../util/exec.js';
import { VMSTUB_XMLNS } from './libvirt-domain.js';

export interface VirshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}
export type Virsh = (uri: string, args: string[]) => Promise<VirshResult>;

const runVirsh: Virsh = async (uri, args) => {
  const virsh = which('virsh');
  if (!virsh) throw new VmstubError('virsh is not installed (apt-get install libvirt-clients)');
  const r = await run(virsh, ['-q', '-c', uri, ...args]);
  return { code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
};

const lastLine = (text: string) => text.trim().split('\n').pop()?.trim() ?? '';

/** A domain's name as libvirt reads it from domain XML. */
const domainName = (xml: string) => /<name>([^<]*)<\/name>/.exec(xml)?.[1];

export class LibvirtClient {
  constructor(
    readonly uri: string,
    private readonly virsh: Virsh = runVirsh,
  ) {}

  private async call(args: string[]): Promise<string> {
    const r = await this.virsh(this.uri, args);
    if (r.code !== 0) throw new VmstubError(`virsh ${args[0]} on ${this.uri}: ${lastLine(r.stderr)}`);
    return r.stdout;
  }

  /** Whether the domain exists and is vmstub's; undefined when there is no such domain. */
  async owner(name: string): Promise<'vmstub' | 'other' | undefined> {
    const r = await this.virsh(this.uri, ['dumpxml', name]);
    if (r.code !== 0) {
      if (/failed to get domain|Domain not found/i.test(r.stderr)) return undefined;
      throw new VmstubError(`virsh dumpxml on ${this.uri}: ${lastLine(r.stderr)}`);
    }
    return r.stdout.includes(VMSTUB_XMLNS) ? 'vmstub' : 'other';
  }

  private async requireOurs(name: string, what: string): Promise<void> {
    const owner = await this.owner(name);
    if (owner === undefined) throw new VmstubError(`${this.uri} has no domain ${name} to ${what}`);
    if (owner === 'other')
      throw new VmstubError(
        `the libvirt domain ${name} on ${this.uri} was not made by vmstub; vmstub does not ${what} it`,
      );
  }

  /** Defines (or redefines) a domain vmstub made; a name taken by anyone else's is refused. */
  async define(xml: string, file: string): Promise<void> {
    const name = domainName(xml);
    if (!name || !xml.includes(VMSTUB_XMLNS))
      throw new Error('not a domain of vmstub: no name or no metadata');
    if ((await this.owner(name)) === 'other')
      throw new VmstubError(
        `the libvirt domain ${name} on ${this.uri} was not made by vmstub; vmstub does not redefine it`,
      );
    await this.call(['define', file]);
  }

  async start(name: string): Promise<void> {
    await this.requireOurs(name, 'start');
    await this.call(['start', name]);
  }

  /** The ACPI power button. */
  async shutdown(name: string): Promise<void> {
    await this.requireOurs(name, 'shut down');
    await this.call(['shutdown', name]);
  }

  /** Pulls the plug. */
  async destroy(name: string): Promise<void> {
    await this.requireOurs(name, 'stop');
    await this.call(['destroy', name]);
  }

  async undefine(name: string): Promise<void> {
    await this.requireOurs(name, 'remove');
    await this.call(['undefine', '--nvram', name]);
  }

  /** libvirt's state word (running, shut off, paused, ...), or undefined for no such domain. */
  async state(name: string): Promise<string | undefined> {
    if ((await this.owner(name)) === undefined) return undefined;
    return (await this.call(['domstate', name])).trim();
  }
}
