/** TF.js layers and graph models → ONNX conversion, and the shipped @upscalerjs ESRGAN and MAXIM models. */
export { convertTfjsLayersModel, convertTfjsLayersModelDetailed, type ConvertOptions, type ConvertResult } from './convert.ts';
export { SHIPPED_MODELS, ensureShippedModel, findShippedModel, shippedModelJsonPath, type ShippedModel } from './shipped.ts';
export { convertTfjsGraphModel, type GraphConvertOptions, type GraphConvertResult } from './graph/convert.ts';
