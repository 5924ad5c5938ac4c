'use strict';

// Lambda@Edge viewer-request: S3 behind CloudFront serves objects, not folders, so
// "/about" and "/about/" are rewritten to "/about/index.html". Paths with a file
// extension pass through unchanged.
exports.handler = async (event) => {
  const request = event.Records[0].cf.request;
  const uri = request.uri;
  if (uri.endsWith('/')) {
    request.uri = uri + 'index.html';
  } else if (!uri.split('/').pop().includes('.')) {
    request.uri = uri + '/index.html';
  }
  return request;
};
