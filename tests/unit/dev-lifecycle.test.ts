/**
 * The developer lifecycle files (Taskfile.yml, compose.yaml, Dockerfile) are checked against
 * package.json and against each other, because `task` and Docker are not available where the tests
 * run: nothing else would notice a renamed script or a broken healthcheck until someone's `task dev:up`.
 *
 * Each check is a function returning a list of problems; the tests run it on the real files (expect no
 * problems) and on broken copies (expect the matching problem), so a check that passes vacuously fails.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { ROOT } from '../support/paths';

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

const REQUIRED_TASKS = [
  'dev:up',
  'dev:down',
  'dev:down:volumes',
  'dev:down:all',
  'dev:reset',
  'dev:status',
  'dev:logs',
  'db:migrate',
  'db:generate',
  'db:seed',
  'db:reset',
  'db:studio',
  'db:rebuild-stats',
  'build',
  'start',
  'dev',
  'test',
  'test:unit',
  'test:integration',
  'test:system',
  'test:coverage',
  'lint',
  'format',
  'check',
  'bench',
  'schema:print',
] as const;

type Obj = Record<string, any>;
interface PackageJson {
  scripts: Record<string, string>;
  dependencies?: Record<string, string>;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `npm <command>` shorthands that run a package.json script of the same name. */
const NPM_SCRIPT_SHORTHANDS: Record<string, string> = {
  test: 'test',
  t: 'test',
  tst: 'test',
  start: 'start',
  stop: 'stop',
  restart: 'restart',
};

/** The package.json script a command runs, if it is an npm script call. */
function npmScriptOf(command: string): string | undefined {
  const words = command.trim().split(/\s+/);
  if (words[0] !== 'npm') return undefined;
  const sub = words[1];
  if (sub === 'run' || sub === 'run-script' || sub === 'rum' || sub === 'urn') {
    return words.slice(2).find((w) => !w.startsWith('-'));
  }
  return sub === undefined ? undefined : NPM_SCRIPT_SHORTHANDS[sub];
}

/** Why a single shell command is not a thin npm / docker compose call, or undefined if it is. */
function thinCommandProblem(command: string): string | undefined {
  // Template actions ({{.CLI_ARGS}}, {{if …}}) are expanded by task, not by the shell.
  const shell = command.replace(/\{\{[\s\S]*?\}\}/g, ' ').trim();
  if (!/^(npm|docker compose)(\s|$)/.test(shell)) {
    return 'is not `npm …` or `docker compose …`';
  }
  if (/&&|\|\||[;|&<>`\n]|\$\(/.test(shell)) return 'chains or redirects shell commands';
  return undefined;
}

/** Problems with Taskfile.yml, given package.json's scripts. */
function checkTaskfile(taskfile: unknown, scripts: Record<string, string>): string[] {
  const problems: string[] = [];
  if (!isObj(taskfile)) return ['Taskfile is not a mapping'];
  if (String(taskfile.version) !== '3') problems.push(`version is ${taskfile.version}, expected '3'`);
  const tasks = taskfile.tasks;
  if (!isObj(tasks) || Object.keys(tasks).length === 0) return [...problems, 'no tasks'];

  for (const name of REQUIRED_TASKS) {
    if (!(name in tasks)) problems.push(`required task ${name} is missing`);
  }

  const checkTaskRef = (where: string, ref: unknown) => {
    if (typeof ref !== 'string' || !(ref in tasks)) problems.push(`${where}: calls unknown task ${ref}`);
  };

  for (const [name, task] of Object.entries(tasks)) {
    if (!isObj(task)) {
      problems.push(`${name}: shorthand task (no desc possible)`);
      continue;
    }
    if (typeof task.desc !== 'string' || task.desc.trim() === '') problems.push(`${name}: has no desc`);

    const deps: unknown[] = Array.isArray(task.deps) ? task.deps : task.deps === undefined ? [] : [task.deps];
    for (const dep of deps) checkTaskRef(`${name} deps`, isObj(dep) ? dep.task : dep);

    const cmds: unknown[] = Array.isArray(task.cmds) ? task.cmds : task.cmds === undefined ? [] : [task.cmds];
    if (task.cmd !== undefined) cmds.push(task.cmd);
    if (cmds.length === 0 && deps.length === 0) problems.push(`${name}: has no cmds`);

    cmds.forEach((entry, i) => {
      const where = `${name} cmds[${i}]`;
      let command: unknown = entry;
      if (isObj(entry)) {
        if (entry.task !== undefined) {
          checkTaskRef(where, entry.task);
          return;
        }
        command = entry.cmd ?? entry.defer;
      }
      if (typeof command !== 'string') {
        problems.push(`${where}: not a command or task reference`);
        return;
      }
      const why = thinCommandProblem(command);
      if (why) problems.push(`${where}: "${command}" ${why}`);
      const script = npmScriptOf(command);
      if (script !== undefined && !(script in scripts)) {
        problems.push(`${where}: npm script "${script}" is not in package.json`);
      }
    });
  }
  return problems;
}

/** The value of a compose `environment:` entry, in either the mapping or the list form. */
function composeEnv(service: Obj, key: string): string | undefined {
  const env = service.environment;
  if (isObj(env)) return env[key] === undefined || env[key] === null ? undefined : String(env[key]);
  if (Array.isArray(env)) {
    const hit = env.find((e) => typeof e === 'string' && e.startsWith(`${key}=`));
    return hit?.slice(key.length + 1);
  }
  return undefined;
}

function hasHealthcheck(service: Obj, mustMention: RegExp, where: string, problems: string[]): void {
  const hc = service.healthcheck;
  if (!isObj(hc) || hc.disable === true) {
    problems.push(`${where}: no healthcheck`);
    return;
  }
  const test = Array.isArray(hc.test) ? hc.test.join(' ') : String(hc.test ?? '');
  if (!mustMention.test(test)) problems.push(`${where}: healthcheck does not run ${mustMention}`);
  for (const key of ['interval', 'timeout', 'retries', 'start_period']) {
    if (hc[key] === undefined) problems.push(`${where}: healthcheck has no ${key}`);
  }
}

/** Problems with compose.yaml. */
function checkCompose(compose: unknown): string[] {
  const problems: string[] = [];
  if (!isObj(compose) || !isObj(compose.services)) return ['compose file has no services'];
  const services = compose.services;

  const pg = services.postgres;
  if (!isObj(pg)) {
    problems.push('no postgres service');
  } else {
    if (!/^postgres:16(-|$)/.test(String(pg.image))) problems.push(`postgres: image ${pg.image}`);
    for (const key of ['POSTGRES_USER', 'POSTGRES_PASSWORD', 'POSTGRES_DB']) {
      if (!composeEnv(pg, key)) problems.push(`postgres: ${key} is not set`);
    }
    hasHealthcheck(pg, /pg_isready/, 'postgres', problems);
    const mounts: unknown[] = Array.isArray(pg.volumes) ? pg.volumes : [];
    const dataMount = mounts.some((m) =>
      typeof m === 'string'
        ? /^pgdata:\/var\/lib\/postgresql\/data(:|$)/.test(m)
        : isObj(m) && m.source === 'pgdata' && m.target === '/var/lib/postgresql/data',
    );
    if (!dataMount) problems.push('postgres: pgdata is not mounted at /var/lib/postgresql/data');
    if (!isObj(compose.volumes) || !('pgdata' in compose.volumes)) {
      problems.push('named volume pgdata is not declared under volumes:');
    }
  }

  const app = services.app;
  if (!isObj(app)) {
    problems.push('no app service');
    return problems;
  }
  if (!Array.isArray(app.profiles) || !app.profiles.includes('app')) {
    problems.push('app: not behind the "app" profile (dev:up would build it)');
  }
  if (app.build === undefined) problems.push('app: not built from the Dockerfile');
  const url = composeEnv(app, 'DATABASE_URL');
  let host: string | undefined;
  try {
    host = url ? new URL(url).hostname : undefined;
  } catch {
    host = undefined;
  }
  if (!host || !isObj(services[host])) {
    problems.push(`app: DATABASE_URL host "${host}" is not a compose service`);
  } else if (host !== 'postgres') {
    problems.push(`app: DATABASE_URL points at ${host}, not the postgres service`);
  }
  const dependsOn = isObj(app.depends_on) ? app.depends_on.postgres : undefined;
  if (!isObj(dependsOn) || dependsOn.condition !== 'service_healthy') {
    problems.push('app: does not wait for postgres to be healthy (depends_on condition)');
  }
  hasHealthcheck(app, /localhost:4000\/(readyz|healthz)/, 'app', problems);
  return problems;
}

/** Problems with the Dockerfile (and .dockerignore), given package.json and a file-exists check. */
function checkDockerfile(
  dockerfile: string,
  dockerignore: string,
  pkg: PackageJson,
  exists: (file: string) => boolean,
): string[] {
  const problems: string[] = [];
  const lines = dockerfile
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const instr = (name: string) => lines.filter((l) => l.toUpperCase().startsWith(`${name} `));
  const stages = instr('FROM');
  if (stages.length < 2) problems.push('not multi-stage');
  // Each stage starts from node:20-bookworm-slim or from an earlier stage.
  const stageNames = new Set<string>();
  for (const line of stages) {
    const [, image, alias] = line.match(/^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i) ?? [];
    if (image !== 'node:20-bookworm-slim' && !stageNames.has(image)) {
      problems.push(`stage FROM ${image} is not node:20-bookworm-slim`);
    }
    if (alias) stageNames.add(alias);
  }
  // Instructions of the final stage only: that is what runs.
  const lastFrom = lines.findLastIndex((l) => /^FROM\s/i.test(l));
  const final = lines.slice(lastFrom);
  const finalUser = final.filter((l) => /^USER\s/i.test(l)).at(-1);
  if (!finalUser || /^USER\s+(root|0)(:|$)/i.test(finalUser)) problems.push('final stage runs as root');
  if (!final.some((l) => /^EXPOSE\s+.*\b4000\b/i.test(l))) problems.push('does not EXPOSE 4000');
  if (!instr('RUN').some((l) => /\bnpm ci\b/.test(l))) problems.push('does not install with npm ci');
  // patch-package runs on postinstall: patches/ must be in place before the install that applies it,
  // or the image would run the unpatched driver without a word.
  if (/\bpatch-package\b/.test(pkg.scripts.postinstall ?? '')) {
    const install = lines.findIndex((l) => /^RUN\s.*\bnpm ci\b/i.test(l));
    const copied = lines.findIndex((l) => /^COPY\s+(?!--from)(\S+\s+)*(\.|\.\/)?patches\/?\s/i.test(l));
    if (install >= 0 && (copied < 0 || copied > install)) {
      problems.push('patches/ is not copied before npm ci (its postinstall would patch nothing)');
    }
  }

  const cmdLine = final.filter((l) => /^CMD\s/i.test(l)).at(-1);
  let argv: unknown;
  try {
    argv = cmdLine ? JSON.parse(cmdLine.replace(/^CMD\s+/i, '')) : undefined;
  } catch {
    argv = undefined;
  }
  if (!Array.isArray(argv) || argv[0] !== 'node') {
    problems.push('CMD is not the exec form ["node", …] (signals would not reach node)');
    return problems;
  }
  // node [--import mod | --flag]… script
  let script: string | undefined;
  for (let i = 1; i < argv.length; i++) {
    const arg = String(argv[i]);
    if (arg === '--import' || arg === '--require' || arg === '-r' || arg === '--loader') {
      const mod = String(argv[++i]);
      // The image installs with --omit=dev: a preloaded module must be a runtime dependency.
      if (!mod.startsWith('.') && !(mod in (pkg.dependencies ?? {}))) {
        problems.push(`CMD preloads ${mod}, which is not in package.json dependencies`);
      }
    } else if (!arg.startsWith('-')) {
      script = arg;
      break;
    }
  }
  if (!script) {
    problems.push('CMD names no script');
  } else {
    // One production path: the image runs what `npm run build` writes (dist/<entry>.js from
    // src/<entry>.ts), built in an earlier stage and copied into the final one.
    const build = pkg.scripts.build ?? '';
    const outdir = build.match(/--outdir[= ](\S+)/)?.[1]?.replace(/^\.\//, '');
    const source =
      outdir && script.startsWith(`${outdir}/`)
        ? script.replace(`${outdir}/`, 'src/').replace(/\.js$/, '.ts')
        : undefined;
    if (!source) {
      problems.push(`CMD runs ${script}, not what \`npm run build\` writes into ${outdir ?? 'its outdir'}`);
    } else {
      const entries = build.split(/\s+/).filter((w) => w.startsWith('src/') && w.endsWith('.ts'));
      const globToRegExp = (glob: string) =>
        new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
      if (!exists(source) || !entries.some((entry) => globToRegExp(entry).test(source))) {
        problems.push(`CMD runs ${script}, which \`npm run build\` does not produce (no entry ${source})`);
      }
      if (!instr('RUN').some((l) => /\bnpm run build\b/.test(l)))
        problems.push('does not run `npm run build`');
      if (!final.some((l) => new RegExp(`^COPY\\s+--from=\\S+\\s+(\\S+/)?${outdir}/?\\s`, 'i').test(l))) {
        problems.push(`final stage does not copy ${outdir}/ from the build stage`);
      }
      const ignored = new Set(
        dockerignore
          .split(/\r?\n/)
          .map((l) => l.trim().replace(/^\/|\/$/g, ''))
          .filter((l) => l && !l.startsWith('#')),
      );
      const segments = source.split('/');
      for (let n = 1; n <= segments.length; n++) {
        const prefix = segments.slice(0, n).join('/');
        if (ignored.has(prefix)) problems.push(`.dockerignore excludes ${prefix}, which the build needs`);
      }
    }
  }
  for (const must of ['node_modules', '.data', '.git']) {
    if (!dockerignore.split(/\r?\n/).some((l) => l.trim().replace(/^\/|\/$/g, '') === must)) {
      problems.push(`.dockerignore does not exclude ${must}`);
    }
  }
  return problems;
}

/** The compose PostgreSQL as dev:up's DATABASE_URL must name it. */
function checkTaskfileMatchesCompose(taskfile: Obj, compose: Obj): string[] {
  const problems: string[] = [];
  const vars: Obj = isObj(taskfile.vars) ? taskfile.vars : {};
  const expand = (s: string) =>
    s.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_, v: string) => (typeof vars[v] === 'string' ? vars[v] : ''));
  const pg: Obj = compose.services?.postgres ?? {};
  const published = (Array.isArray(pg.ports) ? pg.ports : [])
    .map((p: unknown) => String(isObj(p) ? `${p.published}:${p.target}` : p))
    .find((p: string) => /:5432$/.test(p));
  for (const name of ['dev:up', 'dev:reset']) {
    const raw = taskfile.tasks?.[name]?.env?.DATABASE_URL ?? taskfile.env?.DATABASE_URL;
    if (typeof raw !== 'string') {
      problems.push(`${name}: DATABASE_URL is not set for the compose database`);
      continue;
    }
    let url: URL;
    try {
      url = new URL(expand(raw));
    } catch {
      problems.push(`${name}: DATABASE_URL "${raw}" is not a URL`);
      continue;
    }
    const expected = {
      user: composeEnv(pg, 'POSTGRES_USER'),
      password: composeEnv(pg, 'POSTGRES_PASSWORD'),
      database: composeEnv(pg, 'POSTGRES_DB'),
      port: published?.split(':').at(-2),
    };
    const actual = {
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: url.pathname.replace(/^\//, ''),
      port: url.port || '5432',
    };
    for (const key of Object.keys(expected) as (keyof typeof expected)[]) {
      if (expected[key] !== actual[key]) {
        problems.push(`${name}: DATABASE_URL ${key} is ${actual[key]}, compose has ${expected[key]}`);
      }
    }
    if (!['localhost', '127.0.0.1'].includes(url.hostname)) {
      problems.push(`${name}: DATABASE_URL host ${url.hostname} is not the published port on this machine`);
    }
  }
  return problems;
}

const pkg: PackageJson = JSON.parse(read('package.json'));
const taskfile: Obj = parse(read('Taskfile.yml'));
const compose: Obj = parse(read('compose.yaml'));
const dockerfile = read('Dockerfile');
const dockerignore = read('.dockerignore');
const fileExists = (file: string) => existsSync(path.join(ROOT, file));

/** A deep copy of `value` after `mutate` broke it. */
function broken<T>(value: T, mutate: (copy: any) => void): T {
  const copy = structuredClone(value);
  mutate(copy);
  return copy;
}

describe('Taskfile.yml', () => {
  it('has every required task, each with a desc, each a thin npm / docker compose call', () => {
    expect(checkTaskfile(taskfile, pkg.scripts)).toEqual([]);
  });

  it('points dev:up and dev:reset at the compose PostgreSQL', () => {
    expect(checkTaskfileMatchesCompose(taskfile, compose)).toEqual([]);
  });

  it('reads npm script names the way npm does', () => {
    expect(npmScriptOf('npm run db:migrate')).toBe('db:migrate');
    expect(npmScriptOf('npm run -s bench -- --smoke')).toBe('bench');
    expect(npmScriptOf('npm test -- {{.CLI_ARGS}}')).toBe('test');
    expect(npmScriptOf('npm start')).toBe('start');
    expect(npmScriptOf('npm ci')).toBeUndefined();
    expect(npmScriptOf('docker compose ps')).toBeUndefined();
  });

  const mutations: [string, (t: Obj) => void, RegExp][] = [
    ['a task without desc', (t) => delete t.tasks.lint.desc, /lint: has no desc/],
    ['an empty desc', (t) => (t.tasks.lint.desc = '  '), /lint: has no desc/],
    [
      'a renamed npm script',
      (t) => (t.tasks.lint.cmds = ['npm run lint:all']),
      /"lint:all" is not in package/,
    ],
    ['a raw shell command', (t) => (t.tasks.lint.cmds = ['npx biome lint .']), /is not `npm …`/],
    ['an env prefix', (t) => (t.tasks.lint.cmds = ['CI=1 npm run lint']), /is not `npm …`/],
    ['a chained command', (t) => (t.tasks.lint.cmds = ['npm run lint && rm -rf dist']), /chains/],
    ['a plain docker command', (t) => (t.tasks['dev:status'].cmds = ['docker ps']), /is not `npm …`/],
    [
      'a cmd object with a shell cmd',
      (t) => (t.tasks.lint.cmds = [{ cmd: 'biome lint .' }]),
      /lint cmds\[0\]/,
    ],
    ['a call of an unknown task', (t) => (t.tasks.lint.cmds = [{ task: 'nope' }]), /unknown task nope/],
    ['a dep on an unknown task', (t) => (t.tasks.lint.deps = ['nope']), /unknown task nope/],
    ['a task with no cmds', (t) => delete t.tasks.lint.cmds, /lint: has no cmds/],
    ['a removed required task', (t) => delete t.tasks['db:rebuild-stats'], /db:rebuild-stats is missing/],
    ['a shorthand task', (t) => (t.tasks.extra = 'npm run lint'), /extra: shorthand/],
    ['a wrong version', (t) => (t.version = '2'), /version is 2/],
  ];
  it.each(mutations)('rejects %s', (_label, mutate, expected) => {
    expect(checkTaskfile(broken(taskfile, mutate), pkg.scripts).join('\n')).toMatch(expected);
  });

  it('rejects `npm test` / `npm start` when package.json lacks that script', () => {
    const { test: _test, ...withoutTest } = pkg.scripts;
    expect(checkTaskfile(taskfile, withoutTest).join('\n')).toMatch(/npm script "test" is not in package/);
  });

  it('rejects a DATABASE_URL that does not match the compose database', () => {
    const wrongPort = broken(
      taskfile,
      (t) => (t.vars.COMPOSE_DATABASE_URL = 'postgres://sona:sona@localhost:5433/sona'),
    );
    expect(checkTaskfileMatchesCompose(wrongPort, compose).join('\n')).toMatch(
      /port is 5433, compose has 5432/,
    );
    const wrongUser = broken(compose, (c) => (c.services.postgres.environment.POSTGRES_USER = 'other'));
    expect(checkTaskfileMatchesCompose(taskfile, wrongUser).join('\n')).toMatch(
      /user is sona, compose has other/,
    );
    // Without it (per task or Taskfile-level), dev:up would migrate the embedded database instead.
    const noEnv = broken(taskfile, (t) => {
      delete t.tasks['dev:up'].env;
      delete t.env;
    });
    expect(checkTaskfileMatchesCompose(noEnv, compose).join('\n')).toMatch(/dev:up: DATABASE_URL is not set/);
  });
});

describe('compose.yaml', () => {
  it('has a healthy postgres with a named volume, and an app wired to it', () => {
    expect(checkCompose(compose)).toEqual([]);
  });

  const mutations: [string, (c: Obj) => void, RegExp][] = [
    ['no postgres healthcheck', (c) => delete c.services.postgres.healthcheck, /postgres: no healthcheck/],
    [
      'a healthcheck that is not pg_isready',
      (c) => (c.services.postgres.healthcheck.test = ['CMD', 'true']),
      /does not run \/pg_isready\//,
    ],
    [
      'a healthcheck without start_period',
      (c) => delete c.services.postgres.healthcheck.start_period,
      /healthcheck has no start_period/,
    ],
    [
      'an anonymous data volume',
      (c) => (c.services.postgres.volumes = ['/var/lib/postgresql/data']),
      /pgdata is not mounted/,
    ],
    ['an undeclared named volume', (c) => delete c.volumes, /pgdata is not declared/],
    [
      'an app DATABASE_URL on localhost',
      (c) => (c.services.app.environment.DATABASE_URL = 'postgres://sona:sona@localhost:5432/sona'),
      /DATABASE_URL host "localhost" is not a compose service/,
    ],
    [
      'an app DATABASE_URL on another service',
      (c) => {
        c.services.db = { image: 'postgres:16-alpine' };
        c.services.app.environment.DATABASE_URL = 'postgres://sona:sona@db:5432/sona';
      },
      /points at db, not the postgres service/,
    ],
    ['an app without depends_on', (c) => delete c.services.app.depends_on, /does not wait for postgres/],
    ['an app outside the profile', (c) => delete c.services.app.profiles, /not behind the "app" profile/],
    ['an app without healthcheck', (c) => delete c.services.app.healthcheck, /app: no healthcheck/],
    ['no postgres at all', (c) => delete c.services.postgres, /no postgres service/],
  ];
  it.each(mutations)('rejects %s', (_label, mutate, expected) => {
    expect(checkCompose(broken(compose, mutate)).join('\n')).toMatch(expected);
  });

  it('accepts the list form of environment', () => {
    const listEnv = broken(compose, (c) => {
      c.services.app.environment = Object.entries(c.services.app.environment).map(([k, v]) => `${k}=${v}`);
    });
    expect(checkCompose(listEnv)).toEqual([]);
  });
});

describe('Dockerfile', () => {
  it('runs what `npm run build` produces as a non-root user, from a multi-stage node:20 build', () => {
    expect(checkDockerfile(dockerfile, dockerignore, pkg, fileExists)).toEqual([]);
  });

  const mutations: [string, (d: string) => string, RegExp][] = [
    [
      'a CMD file the build does not write',
      (d) => d.replace('dist/main.js', 'dist/gone.js'),
      /dist\/gone.js, which `npm run build` does not produce/,
    ],
    [
      'a CMD that runs the TypeScript source (a second production path)',
      (d) => d.replace('"dist/main.js"', '"--import", "tsx", "src/main.ts"'),
      /CMD runs src\/main.ts, not what `npm run build` writes/,
    ],
    ['no build step', (d) => d.replace('npm run build && ', ''), /does not run `npm run build`/],
    [
      'an install before patches/ is there',
      (d) => d.replace(/^COPY patches .*$/m, ''),
      /patches\/ is not copied before npm ci/,
    ],
    [
      'a final stage without the build output',
      (d) => d.replace(/^COPY --from=build \/app\/dist .*$/m, ''),
      /final stage does not copy dist\//,
    ],
    ['a shell-form CMD', (d) => d.replace(/^CMD .*$/m, 'CMD node dist/main.js'), /exec form/],
    ['running as root', (d) => d.replace(/^USER node$/m, ''), /runs as root/],
    ['USER root', (d) => d.replace(/^USER node$/m, 'USER root'), /runs as root/],
    ['no EXPOSE', (d) => d.replace(/^EXPOSE .*$/m, ''), /EXPOSE 4000/],
    [
      'a stage on another image',
      (d) => d.replace('FROM base AS runtime', 'FROM ubuntu AS runtime'),
      /FROM ubuntu/,
    ],
    [
      'a single stage',
      (d) => d.replace(/^FROM base AS build$/m, '').replace(/^FROM base AS runtime$/m, ''),
      /multi-stage/,
    ],
    [
      'a preloaded dev dependency',
      (d) => d.replace('["node", ', '["node", "--import", "jest", '),
      /preloads jest/,
    ],
  ];
  it.each(mutations)('rejects %s', (_label, mutate, expected) => {
    expect(checkDockerfile(mutate(dockerfile), dockerignore, pkg, fileExists).join('\n')).toMatch(expected);
  });

  it('rejects a .dockerignore that drops the entry source or keeps node_modules', () => {
    expect(checkDockerfile(dockerfile, `${dockerignore}\nsrc\n`, pkg, fileExists).join('\n')).toMatch(
      /excludes src, which the build needs/,
    );
    const keepsModules = dockerignore.replace(/^node_modules$/m, '');
    expect(checkDockerfile(dockerfile, keepsModules, pkg, fileExists).join('\n')).toMatch(
      /does not exclude node_modules/,
    );
  });
});
