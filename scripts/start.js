// `npm start`: Node-RED on 127.0.0.1 with this package, in the git-ignored .userdir/.
//   npm start                          port 1880
//   PORT=1881 npm start                another port (so is `npm start -- --port 1881`; the option wins over PORT)
//   npm start -- --userDir /tmp/nr     another userDir (created when missing)
// NODE_RED_LINE=5 starts Node-RED 5 (NODE_RED_NODE names its node binary when this one is too old), see userdir.js.
//
// Node-RED runs as a child process and ends with this script:
// - SIGINT, SIGTERM and SIGHUP are passed on, Node-RED stops its flows (deferred stores write what they
//   hold) and this script exits with its exit code; a second signal kills Node-RED at once;
// - when this script's parent goes away without telling it (npm runs `npm run build && node scripts/start.js`
//   in a shell, and a SIGTERM to npm ends that shell but not this script), it stops Node-RED the same way;
// - when this script itself is killed (SIGKILL), Node-RED notices its IPC channel close and stops
//   (exit-with-parent.js, preloaded into it).
const { spawn } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const { prepareUserDir, nodeRedCli, nodeRedNode, root } = require('./userdir');

const USAGE = 'usage: node scripts/start.js [--port <1-65535>] [--userDir <dir>]   (or PORT=<port> npm start)';

/** A TCP port from the command line or PORT, or an error naming where the bad value came from. */
function parsePort(value, from) {
  const port = /^\d+$/.test(String(value).trim()) ? Number(value) : Number.NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${from} must be a port number from 1 to 65535, not "${value}"`);
  return port;
}

/**
 * The options of a command line (`--port 1881`, `--port=1881`, `-p 1881`, `--userDir <dir>`), with the
 * environment's PORT as the port's fallback and 1880 as its default.
 * @param {string[]} argv the arguments after the script
 * @param {NodeJS.ProcessEnv} env
 * @returns {{port: number, userDir: string, help: boolean}}
 */
function parseArgs(argv, env) {
  const options = { port: undefined, userDir: path.join(root, '.userdir'), help: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] =
      argv[i].startsWith('--') && argv[i].includes('=')
        ? [argv[i].slice(0, argv[i].indexOf('=')), argv[i].slice(argv[i].indexOf('=') + 1)]
        : [argv[i], undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    if (flag === '--port' || flag === '-p') options.port = parsePort(value(), flag);
    else if (flag === '--userDir' || flag === '--user-dir') options.userDir = path.resolve(value());
    else if (flag === '--help' || flag === '-h') options.help = true;
    else throw new Error(`unknown option "${argv[i]}"`);
  }
  if (options.port === undefined) options.port = env.PORT !== undefined && env.PORT !== '' ? parsePort(env.PORT, 'PORT') : 1880;
  return options;
}

/** The exit code of a process that ended with `code` or by `signal` (as a shell reports it). */
function exitCode(code, signal) {
  if (code !== null) return code;
  return 128 + (os.constants.signals[signal] ?? 0);
}

function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`${error.message}\n${USAGE}`);
    process.exit(2);
  }
  if (options.help) {
    console.log(USAGE);
    return;
  }
  const settings = prepareUserDir(options.userDir, { port: options.port });
  console.log(`Node-RED with node-red-contrib-flow-cache: http://127.0.0.1:${options.port}/ (userDir ${options.userDir})`);
  const child = spawn(
    nodeRedNode(),
    ['--require', path.join(__dirname, 'exit-with-parent.js'), nodeRedCli(), '--userDir', options.userDir, '--settings', settings],
    {
      // the IPC channel is how Node-RED learns that this script is gone
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    },
  );
  let stopping = false;
  /** Asks Node-RED to stop its flows and exit; asked again, kills it. */
  const stop = (signal) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (stopping) {
      child.kill('SIGKILL');
      return;
    }
    stopping = true;
    child.kill(signal);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => stop(signal));

  // A parent that dies does not signal its children: a changed parent pid says it is gone.
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(watch);
      stop('SIGTERM');
    }
  }, 200);
  watch.unref();

  child.on('error', (error) => {
    console.error(`Node-RED did not start: ${error.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(exitCode(code, signal)));
}

if (require.main === module) main();

module.exports = { parseArgs, parsePort };
