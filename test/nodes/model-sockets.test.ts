/**
 * SUPIR models and upscale models travel on different socket types (SUPIR_MODEL, UPSCALE_MODEL),
 * so a link from one loader into the other family's node is refused at validation, naming the
 * node, the input and both types, instead of failing in execute.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linkAllowed } from '../../editor/src/graph/link-rules.ts';
import { SOCKET_COLOURS, SOCKET_TYPES } from '../../nodes/api/sockets.ts';
import { catalogue } from '../../nodes/index.ts';
import { compilePrompt, NodeRegistry, type ApiPrompt, type ValidationIssue } from '../../server/engine/index.ts';
import { createModelLibrary } from '../../server/models/library.ts';
import { tempEnv } from '../support/fake-context.ts';
import { buildWorkflow, pngBytes, startTestServer, type TestServer } from '../server/helpers.ts';

const registry = new NodeRegistry(catalogue);
const { env, cleanup } = tempEnv();
env.models = createModelLibrary(env.dirs);
afterAll(cleanup);

/** Both loaders, a photo, Stage-1 and Upscale Image fed from `stage1Model` and `upscaleModel`, each saved. */
function prompt(stage1Model: string, upscaleModel: string): ApiPrompt {
  return {
    '1': { class_type: 'LoadUpscaleModel', inputs: { model_name: 'esrgan-medium x4', provider: 'cpu' } },
    '2': { class_type: 'LoadSupirModel', inputs: { pack: 'SUPIR-v0Q', provider: 'cpu' } },
    '3': { class_type: 'LoadImage', inputs: { image: 'photo.png' } },
    '4': { class_type: 'SupirStage1', inputs: { model: [stage1Model, 0], image: ['3', 0] } },
    '5': { class_type: 'UpscaleImage', inputs: { model: [upscaleModel, 0], image: ['3', 0] } },
    '6': { class_type: 'SaveImage', inputs: { image: ['4', 0] } },
    '7': { class_type: 'SaveImage', inputs: { image: ['5', 0] } },
  };
}

describe('model socket types', () => {
  beforeAll(async () => {
    fs.writeFileSync(path.join(env.dirs.folders.inputs, 'photo.png'), await pngBytes(64, 64));
    // Validation only looks for the pack's manifest (Load SUPIR Model refuses a pack that is not there).
    fs.mkdirSync(path.join(env.dirs.folders.models, 'SUPIR-v0Q'), { recursive: true });
    fs.writeFileSync(path.join(env.dirs.folders.models, 'SUPIR-v0Q', 'manifest.json'), '{}');
  });

  it('every model input and output is SUPIR_MODEL or UPSCALE_MODEL by family, each with its own colour', () => {
    expect(SOCKET_TYPES).not.toContain('MODEL');
    expect(SOCKET_COLOURS.SUPIR_MODEL).not.toBe(SOCKET_COLOURS.UPSCALE_MODEL);
    const models = catalogue.flatMap((n) => [
      ...Object.entries(n.inputs).filter(([name]) => name === 'model').map(([, spec]) => `${n.id}<${spec.type}`),
      ...Object.entries(n.outputs).filter(([name]) => name === 'model').map(([, type]) => `${n.id}>${type}`),
    ]);
    expect(models.sort()).toEqual(
      [
        'LoadUpscaleModel>UPSCALE_MODEL',
        'UpscaleImage<UPSCALE_MODEL',
        'LoadSupirModel>SUPIR_MODEL',
        'SupirStage1<SUPIR_MODEL',
        'TextEncodeSDXL<SUPIR_MODEL',
        'SupirEncode<SUPIR_MODEL',
        'SupirSample<SUPIR_MODEL',
        'SupirDecode<SUPIR_MODEL',
      ].sort(),
    );
  });

  it('the editor\'s canvas draws a model link only within its family', () => {
    expect(linkAllowed('SUPIR_MODEL', 'SUPIR_MODEL')).toBe(true);
    expect(linkAllowed('UPSCALE_MODEL', 'UPSCALE_MODEL')).toBe(true);
    expect(linkAllowed('UPSCALE_MODEL', 'SUPIR_MODEL')).toBe(false);
    expect(linkAllowed('SUPIR_MODEL', 'UPSCALE_MODEL')).toBe(false);
  });

  it('validation accepts each model in its own family', () => {
    const result = compilePrompt(prompt('2', '1'), registry, env);
    expect(result.ok ? [] : result.errors).toEqual([]);
  });

  it('validation refuses an upscale model in a SUPIR node and a SUPIR model in Upscale Image, naming node, input and both types', () => {
    const result = compilePrompt(prompt('1', '2'), registry, env);
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors).toEqual([
      {
        node_id: '4',
        node_type: 'SupirStage1',
        input: 'model',
        code: 'type_mismatch',
        message: "expects SUPIR_MODEL but is linked to UPSCALE_MODEL output 'model' of node 1 ('Load Restore Model')",
      },
      {
        node_id: '5',
        node_type: 'UpscaleImage',
        input: 'model',
        code: 'type_mismatch',
        message: "expects UPSCALE_MODEL but is linked to SUPIR_MODEL output 'model' of node 2 ('Load SUPIR Model')",
      },
    ]);
  });

  it('every SUPIR node refuses an upscale model', () => {
    for (const type of ['SupirStage1', 'SupirEncode', 'TextEncodeSDXL', 'SupirSample', 'SupirDecode']) {
      const result = compilePrompt({ ...prompt('2', '1'), '4': { class_type: type, inputs: { model: ['1', 0] } } }, registry, env);
      const issues = result.ok ? [] : result.errors.filter((e) => e.code === 'type_mismatch' && e.node_id === '4');
      expect(issues, type).toEqual([expect.objectContaining({ node_id: '4', input: 'model', message: expect.stringMatching(/^expects SUPIR_MODEL but is linked to UPSCALE_MODEL/) })]);
    }
  });
});

describe('POST /api/prompt with a wrong model link', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
    expect((await server.upload('photo.png', await pngBytes(64, 64))).status).toBe(200);
  });
  afterAll(() => server.close());

  it('answers 400 naming the node, the input and both types, for a version-1 file with MODEL links', async () => {
    // buildWorkflow writes version 1 documents: the links carry the old "MODEL" type.
    const workflow = buildWorkflow([
      { id: 1, type: 'LoadUpscaleModel', widgets: { model_name: 'esrgan-medium x4', provider: 'cpu' } },
      { id: 2, type: 'LoadImage', widgets: { image: 'photo.png' } },
      { id: 3, type: 'SupirDecode', inputs: { model: [1, 0, 'MODEL'] } },
      { id: 4, type: 'SupirStage1', inputs: { model: [1, 0, 'MODEL'], image: [2, 0, 'IMAGE'] } },
      { id: 5, type: 'SaveImage', inputs: { image: [4, 0, 'IMAGE'] } },
    ]);
    expect(workflow.version).toBe(1);
    const res = await server.postJson('/api/prompt', { workflow });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string }; node_errors: ValidationIssue[] };
    expect(body.error.code).toBe('VALIDATION');
    // Node 3 feeds no output, so it is not checked; node 4 is.
    expect(body.node_errors).toEqual([
      {
        node_id: '4',
        node_type: 'SupirStage1',
        input: 'model',
        code: 'type_mismatch',
        message: "expects SUPIR_MODEL but is linked to UPSCALE_MODEL output 'model' of node 1 ('Load Restore Model')",
      },
    ]);
  });

  it('lists both model types with their colours in GET /api/nodes', async () => {
    const nodes = (await (await server.api('/api/nodes')).json()) as { socket_types: Array<{ name: string; color: string }> };
    const names = nodes.socket_types.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['SUPIR_MODEL', 'UPSCALE_MODEL']));
    expect(names).not.toContain('MODEL');
  });
});
